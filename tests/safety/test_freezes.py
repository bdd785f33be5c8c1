"""Freezes and races: nothing the shell does may stop the event loop or a program thread."""

from __future__ import annotations

import importlib
import threading

import pytest

from otrace import holds
from otrace.shell.session import Session
from tests.safety.conftest import in_thread, loop_alive


@pytest.fixture
def prog():
    from tests.safety import prog as module

    return importlib.reload(module)


@pytest.fixture
def sh(prog):
    s = Session(vars(prog), allow_unsafe=True)
    s.execute("set safe_mode False")
    yield s
    s.close()


def test_edit_force_with_an_event_loop_does_not_deadlock(prog, sh, loop_thread, tmp_path):
    loop = loop_thread["loop"]
    holds.set_eventloop_callback(loop.add_callback)
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("def respond(x):\n    return f'v2 {x}'\n")
    b.write_text("def respond(x):\n    return f'v3 {x}'\n")
    assert sh.execute(f"edit respond < {a}").out.strip() == "Patched respond"
    finished, result = in_thread(lambda: sh.execute(f"edit -f respond < {b}"), timeout=15)
    assert finished, "edit -f never returned: the shell and the loop deadlocked"
    assert result.out.strip() == "Patched respond", result.err
    assert loop_alive(loop), "the event loop is frozen"
    assert prog.respond(1) == "v3 1"
    assert sh.execute("unpatch respond").out.strip() == "Unpatching respond"
    assert prog.respond(1) == "v1 1"


def test_a_change_that_hangs_on_the_loop_is_waited_for_with_a_bound(loop_thread):
    loop = loop_thread["loop"]
    gate = threading.Event()
    finished, result = in_thread(
        lambda: holds.call_on_loop(lambda: gate.wait(10), timeout=0.5, callback=loop.add_callback),
        timeout=5,
    )
    gate.set()
    assert finished, "call_on_loop waited without a bound for a call that had started"
    assert isinstance(result, TimeoutError)


def test_concurrent_patches_of_one_name_keep_the_true_original(prog):
    from otrace.tracing import patching

    # the first patch's source stops while it is being prepared (its top level runs then)
    prog.entered, prog.proceed = threading.Event(), threading.Event()
    slow = "entered.set()\nproceed.wait(5)\ndef respond(x):\n    return 'A'\n"
    box: dict = {}

    def first():
        try:
            patching.patch(prog, "respond", slow)
        except Exception as exc:  # noqa: BLE001 - reported below
            box["exc"] = exc

    t = threading.Thread(target=first, daemon=True)
    t.start()
    assert prog.entered.wait(5)
    with pytest.raises(patching.PatchError, match="being patched"):
        patching.patch(prog, "respond", "def respond(x):\n    return 'B'\n")
    prog.proceed.set()
    t.join(5)
    assert "exc" not in box and prog.respond(0) == "A"
    patching.unpatch("respond")
    assert prog.respond(0) == "v1 0", "the original was lost"
