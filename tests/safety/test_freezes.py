"""Freezes and races: nothing the shell does may stop the event loop or a program thread."""

from __future__ import annotations

import importlib
import threading

import pytest

from otrace import holds
from otrace.errors import TraceError
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


def test_pdb_on_an_event_loop_thread_is_refused(prog, monkeypatch, announced):
    import asyncio

    from otrace import tracing
    from otrace.tracing import debugger

    started = []
    monkeypatch.setattr(debugger, "start_debugger", lambda kind: started.append(kind))
    for action in ("pdb", "ipdb"):
        tracing.trace(prog.respond, prog, "respond", condition="call", action=action)

        async def on_loop():
            return prog.respond(1)

        assert asyncio.run(on_loop()) == "v1 1"
        tracing.untrace("respond")
    assert started == [], "a debugger prompt would have frozen the event loop"
    assert sum("pdb refused" in line for line in announced) == 2, announced


def test_trace_active_is_switched_under_the_registry_lock(runtime, monkeypatch):
    """A count running out on a traced thread while a new trace arrives (deterministic)."""
    from otrace.tracing.engine import TraceSpec

    tracer, params = runtime.tracer, runtime.params
    first = TraceSpec("first", None)
    tracer.register(first)
    second = TraceSpec("second", None)
    state = {"armed": True}

    class Interleave:  # the moment unregister looks at trace_active, a trace arrives
        def __getattr__(self, name):
            return getattr(params, name)

        @property
        def trace_active(self):
            if state.pop("armed", False):
                t = threading.Thread(target=tracer.register, args=(second,), daemon=True)
                t.start()
                t.join(0.5)  # with the fix it waits for the lock; without, it completes
            return params.trace_active

    monkeypatch.setattr(tracer, "params", Interleave())
    tracer.unregister("first", first)
    pause = threading.Event()
    for _ in range(50):
        if tracer.get_spec("second") is second:
            break
        pause.wait(0.05)
    assert tracer.get_spec("second") is second
    assert params.trace_active, "a registered trace with tracing switched off never fires"


@pytest.mark.parametrize("how", ["trace", "untrace"])
def test_no_program_repr_runs_under_the_tracing_lock(prog, how):
    """A slow __repr__ in a trace error message must not stall traced program threads."""
    from otrace import tracing

    release = threading.Event()

    class Slow:
        def __call__(self):
            pass

        def __repr__(self):
            release.wait(3)
            return "slow"

        __str__ = __repr__

    slow = Slow()
    try:
        tracing.trace(prog.respond, prog, "respond", condition="call", count=1)
        box: dict = {}

        def shell():
            try:
                getattr(tracing, how)(slow)
            except TraceError as exc:
                box["err"] = str(exc)

        thread = threading.Thread(target=shell, daemon=True)
        thread.start()
        threading.Event().wait(0.3)  # let the shell reach the message (a sleep is the point)
        took = time_call(lambda: prog.respond(1))  # the count runs out: takes the lock
        release.set()
        thread.join(5)
        assert took < 1.0, f"a traced call stalled {took:.1f}s behind a program __repr__"
        assert "slow" in box["err"]
    finally:
        release.set()


def time_call(func) -> float:
    import time

    t0 = time.monotonic()
    func()
    return time.monotonic() - t0


def test_no_patch_lock_is_held_while_waiting_for_the_loop(prog, loop_thread):
    """While one patch waits for a busy loop, patching another name is not held up."""
    import time

    from otrace.tracing import patching

    loop = loop_thread["loop"]
    busy, release = threading.Event(), threading.Event()
    loop.add_callback(lambda: (busy.set(), release.wait(5)))  # the loop is busy for a while
    assert busy.wait(5)
    first = threading.Thread(
        target=lambda: patching.patch(
            prog,
            "respond",
            "def respond(x):\n    return 'A'\n",
            eventloop_callback=loop.add_callback,
        ),
        daemon=True,
    )
    first.start()
    try:
        time.sleep(0.2)  # let the first patch reach its wait (a sleep is the point)
        t0 = time.monotonic()
        ok, result = in_thread(
            lambda: patching.patch(prog, "handle", "async def handle(x):\n    return x\n"), 5
        )
        took = time.monotonic() - t0
        assert ok and took < 1.0, f"a patch of another name waited {took:.1f}s for a lock"
        assert result.name == "handle", result
    finally:
        release.set()
        first.join(10)
    assert prog.respond(1) == "A"
