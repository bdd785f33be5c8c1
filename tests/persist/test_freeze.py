"""The ``pickle_file`` freeze of a chain captured raw (otrace.contexts.freeze): what can still
change is copied on the traced thread, the rest goes to the writer by reference, and the
record stores what the context showed when it was captured; and submit takes no lock."""

from __future__ import annotations

import copy
import sys
import threading

import pytest

from otrace.contexts import sqlite as store_sqlite
from otrace.contexts.capture import capture_exception
from otrace.contexts.lazy import raw_records
from otrace.contexts.record import TraceContext
from otrace.contexts.sanitize import Unpicklable, decode, encode, freeze_context

pytestmark = pytest.mark.timeout(60)


def _fails(n):
    raise ValueError(n)


def _level(held, n):  # noqa: ARG001  (``held``: a finished frame's variable)
    return _fails(n)


def _catch(held):
    try:
        _level(held, 1)
    except ValueError as exc:
        values, trc = capture_exception(exc, exc.__traceback__, sys._getframe(1))
        return TraceContext("exceptions", "Freeze.case", "ValueError", values, trc)


# what the capturing thread made: a global, since a closure's list would be a variable of
# the captured frames (and hold the context itself by the time it is written)
_OUT: list = []


def _on_thread(held):
    """(context, snapshot) captured and frozen at once on a thread of its own, as the
    traced thread does: the frames above are the thread's bootstrap (holding no container)."""
    _OUT.clear()

    def traced():
        here = held  # noqa: F841  (a variable of a frame still running when captured)
        ctx = _catch(held)
        _OUT.append((ctx, freeze_context(ctx, 1)))

    thread = threading.Thread(target=traced)
    thread.start()
    thread.join(10)
    assert _OUT, "the capturing thread did not finish"
    return _OUT.pop()


def _stored(ctx, snap):
    back = decode(encode(snap), key=ctx.id, kind=ctx.kind, created=ctx.created)
    chain = {}
    node = back
    while node is not None:
        chain[node["__trc"]["funcname"]] = node
        node = node.get("__up")
    return chain


def test_frames_holding_no_container_go_by_reference():
    ctx, snap = _on_thread((1, "two", None))  # a tuple only of values that cannot change
    raws, _ = raw_records(ctx)
    assert snap.raws is raws and snap.copies is None  # nothing copied, nothing built
    stored = _stored(ctx, snap)
    assert stored["_level"]["held"] == (1, "two", None) and stored["_level"]["n"] == 1
    assert stored["traced"]["here"] == (1, "two", None)
    assert stored["_fails"]["n"] == 1  # the root
    assert list(stored) == [
        "_fails",
        "_level",
        "_catch",
        "traced",
        "run",
        "_bootstrap_inner",
        "_bootstrap",
    ]


@pytest.mark.parametrize(
    "held, change",
    [
        ([1, 2], lambda h: h.append(3)),
        ({"k": [1, 2]}, lambda h: h["k"].append(3)),
        ({1, 2}, lambda h: h.add(3)),
        ((1, [1, 2]), lambda h: h[1].append(3)),  # a tuple holding a list
    ],
    ids=["list", "dict", "set", "tuple-of-list"],
)
def test_containers_changed_after_the_freeze_are_stored_as_captured(held, change):
    """Finished frames (``_level``) and frames still running (``traced``, ``_catch``) alike."""
    before = copy.deepcopy(held)
    ctx, snap = _on_thread(held)
    raws, _ = raw_records(ctx)
    copied = {raws[i][0][2] for i in snap.copies or ()}
    assert copied == {"_level", "_catch", "traced"}  # only the frames holding it
    change(held)
    assert held != before
    stored = _stored(ctx, snap)
    for name in ("_level", "_catch"):
        assert stored[name]["held"] == before, name
    assert stored["traced"]["here"] == before
    # the frames that hold nothing that changes are read from the raw records, unchanged
    assert "self" in stored["_bootstrap"]


def test_a_variable_holding_a_trace_context_is_stored_as_a_placeholder():
    other = TraceContext("traces", "Other.one", "call", {"x": 1})
    ctx, snap = _on_thread(other)
    stored = _stored(ctx, snap)
    held = stored["_level"]["held"]
    assert isinstance(held, Unpicklable) and "another trace context" in held.reason


def test_submit_takes_no_lock(tmp_path):
    """A program thread submits while the writer's count lock is held elsewhere (the
    writer thread counting a batch, or stats()): it never waits for it."""
    w = store_sqlite.PickleWriter(tmp_path / "nolock.db")
    done = threading.Event()

    def submit_all():
        for i in range(20):
            w.submit(TraceContext("traces", "A.b", "call", {"i": i}))
        done.set()

    try:
        with w._count_lock:
            thread = threading.Thread(target=submit_all)
            thread.start()
            assert done.wait(10), "submit waited for the count lock"
        thread.join(10)
        assert w.flush(30)
        stats = w.stats()
        assert stats["submitted"] == stats["written"] == 20, stats
        assert stats["failed"] == stats["dropped"] == 0
        assert w.stats()["submitted"] == 20  # reading a count does not change it
    finally:
        w.close()


def test_wake_ups_do_not_pile_up_while_the_writer_is_busy(tmp_path):
    """Each context that finds the queue empty wakes the writer with a token; a writer kept
    busy (a context arrives during every write) drops the stale ones as it takes a batch."""

    class Busy(store_sqlite.PickleWriter):
        rounds = 50
        most = 0
        done = threading.Event()

        def write_rows(self, rows):
            super().write_rows(rows)
            self.most = max(self.most, self._nudge.qsize())
            if self.rounds:
                self.rounds -= 1
                self.submit(TraceContext("traces", "A.b", "call", {"i": self.rounds}))
            else:
                self.done.set()

    w = Busy(tmp_path / "busy.db")
    try:
        w.submit(TraceContext("traces", "A.b", "call", {"i": -1}))
        assert w.done.wait(30)
        assert w.flush(30) and w.stats()["written"] == 51
        assert w.most <= 1, w.most
    finally:
        w.close()


class _Meta(type):
    """A program metaclass: hashing or comparing its classes is program code."""

    calls: list[str] = []

    def __hash__(cls) -> int:
        _Meta.calls.append("hash")
        raise SystemExit("metaclass __hash__ ran")

    def __eq__(cls, other: object) -> bool:
        _Meta.calls.append("eq")
        raise SystemExit("metaclass __eq__ ran")


class _Hostile(metaclass=_Meta):
    pass


@pytest.mark.parametrize(
    "held",
    [_Hostile(), [_Hostile()], (1, _Hostile()), {"k": _Hostile()}, {_Hostile(): 1}, _Hostile],
    ids=["value", "in-a-list", "in-a-tuple", "dict-value", "dict-key", "the-class"],
)
def test_the_freeze_never_hashes_or_compares_a_program_class(held):
    """The freeze decides by each value's type which to copy without hashing or comparing the
    type: a metaclass's ``__hash__``/``__eq__`` never runs on the traced thread."""
    _Meta.calls.clear()
    ctx, snap = _on_thread(held)
    assert _Meta.calls == []
    assert snap is not None and type(snap).__name__ == "Snapshot"
