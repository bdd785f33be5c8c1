"""Installing patches on a real Tornado IOLoop running in another thread."""

from __future__ import annotations

import asyncio
import threading

import pytest
from tornado.ioloop import IOLoop

from otrace import holds
from otrace.errors import PatchError
from otrace.tracing import patching as engine
from tests.rt import PATCHES
from tests.shell.conftest import Transcript


@pytest.fixture
def loop_thread():
    ready = threading.Event()
    box = {}

    def run():
        asyncio.set_event_loop(asyncio.new_event_loop())
        box["loop"] = IOLoop.current()
        box["thread"] = threading.current_thread()
        ready.set()
        box["loop"].start()

    thread = threading.Thread(target=run, name="ioloop", daemon=True)
    thread.start()
    ready.wait(5)
    yield box
    holds.set_eventloop_callback(None)
    loop = box["loop"]
    loop.add_callback(loop.stop)
    thread.join(5)
    loop.close(all_fds=True)


def test_edit_and_unpatch_run_on_the_loop(prog, sh, patchfile, loop_thread):
    loop = loop_thread["loop"]
    where = []

    def on_loop(func):
        def job():
            where.append(threading.current_thread())
            func()

        loop.add_callback(job)

    holds.set_eventloop_callback(on_loop)  # the program's door, as OShell/attach set it
    t = Transcript(sh)
    assert (
        t.out("edit plain < " + patchfile("def plain(a, b=2):\n    return 'on loop'\n"))
        == "Patched plain"
    )
    assert where == [loop_thread["thread"]]

    # a request on the loop sees the new code
    done = threading.Event()
    seen = []
    loop.add_callback(lambda: (seen.append(prog.plain(1)), done.set()))
    assert done.wait(5)
    assert seen == ["on loop"]

    assert t.out("unpatch plain") == "Unpatching plain"
    assert where == [loop_thread["thread"]] * 2
    assert prog.plain(1) == 3


def test_plain_add_callback(prog, loop_thread):
    loop = loop_thread["loop"]
    p = engine.patch(
        prog, "plain", "def plain(a, b=2):\n    return 0\n", eventloop_callback=loop.add_callback
    )
    assert prog.plain(5) == 0 and p.mode == "in place"
    engine.unpatch("plain", eventloop_callback=loop.add_callback)
    assert prog.plain(5) == 7


def test_loop_that_never_runs_it(prog):
    with pytest.raises(PatchError, match="did not run"):
        engine.patch(
            prog,
            "plain",
            "def plain(a, b=2):\n    return 0\n",
            eventloop_callback=lambda func: None,
            timeout=0.2,
        )
    assert prog.plain(5) == 7
    assert PATCHES == {}
