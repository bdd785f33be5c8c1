"""A traced function called by recording itself runs untraced, on that thread only, and
tracing resumes as soon as the recording ends (instrument.enter/leave; both back ends)."""

from __future__ import annotations

import threading
import types

import pytest

from otrace.tracing import instrument, trace
from tests.rt import STORE

pytestmark = pytest.mark.timeout(30)

SRC = """
def inner(x):
    return x

def outer(key):
    return key

def failing(key):
    raise ValueError("boom")
"""


@pytest.fixture
def mod():
    m = types.ModuleType("reentry_sample")
    exec(compile(SRC, "<reentry_sample>", "exec"), m.__dict__)
    return m


class Key:
    """A value whose comparison (run by a condition, while recording) calls a traced
    function, from this thread and from another one."""

    def __init__(self, mod):
        self.mod = mod
        self.seen: list[bool] = []  # instrument.busy() as the comparison ran

    def __eq__(self, other):
        busy = instrument.busy()
        self.seen.append(busy)
        if busy:  # (the full test, as the call is recorded; the quick one runs before)
            self.mod.inner("from a condition")
            elsewhere = threading.Thread(target=self.mod.inner, args=("from another thread",))
            elsewhere.start()
            elsewhere.join(10)
        return True

    __hash__ = object.__hash__


def test_recording_runs_traced_code_untraced_on_its_own_thread_only(mod):
    trace(mod.inner, mod, "inner", condition="call")
    trace(mod.outer, mod, "outer", condition="key==1")
    key = Key(mod)
    assert not instrument.busy()
    mod.outer(key)
    assert key.seen[-1] is True  # the condition ran while this thread recorded
    assert not instrument.busy()  # and the flag is down again
    # the other thread's call was traced; this thread's, from the condition, was not
    (calls,) = STORE.recent["traces"]["inner"].values()
    (ctx,) = calls.values()
    assert str(ctx["__trc"]["argstr"]) == "x=from another thread"
    assert "outer" in STORE.recent["traces"]
    mod.inner("after")  # traced again
    assert sum(len(v) for v in STORE.recent["traces"]["inner"].values()) == 2


def test_an_exception_recorded_leaves_the_flag_down(mod):
    trace(mod.failing, mod, "failing")
    for _ in range(2):
        with pytest.raises(ValueError):
            mod.failing(1)
        assert not instrument.busy()
    assert sum(len(v) for v in STORE.recent["exceptions"]["failing"].values()) == 2


def test_enter_leave_busy():
    assert not instrument.busy()
    assert instrument.enter() is True
    try:
        assert instrument.busy()
        assert instrument.enter() is False  # already recording: nothing set
        other: list[bool] = []
        t = threading.Thread(target=lambda: other.append(instrument.busy()))
        t.start()
        t.join(10)
        assert other == [False]  # per thread
    finally:
        instrument.leave()
    assert not instrument.busy()
