"""``flush``: an idle writer answers at once, without a round trip to its thread; a writer
in the middle of a batch is waited for."""

from __future__ import annotations

import threading

import persist_shapes
import pytest

from otrace.contexts import sqlite_writer

pytestmark = pytest.mark.timeout(120)


class Held(sqlite_writer.PickleWriter):
    """A PickleWriter whose next batch waits in ``write_rows`` until ``go`` is set."""

    def connect(self) -> None:
        super().connect()
        self.entered, self.go = threading.Event(), threading.Event()

    def write_rows(self, rows):  # writer thread
        self.entered.set()
        self.go.wait(60)
        super().write_rows(rows)


class CountingNudge:
    """Stands in for the writer's wake-up queue: counts the wake-ups flush sends."""

    def __init__(self, real) -> None:
        self.real, self.puts = real, 0

    def put(self, item) -> None:
        self.puts += 1
        self.real.put(item)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_flush_waits_for_the_batch_the_writer_is_writing(tmp_path):
    w = Held(tmp_path / "held.db")
    try:
        w.submit(persist_shapes.make_simple(1))
        assert w.entered.wait(30)  # taken off the queue, not written yet
        assert w.stats()["queued"] == 0
        assert not w.flush(0.2)
        w.go.set()
        assert w.flush(30)
        assert w.stats()["written"] == 1
    finally:
        w.go.set()
        w.close()


def test_the_flush_of_an_idle_writer_does_not_wake_its_thread(tmp_path):
    w = sqlite_writer.PickleWriter(tmp_path / "idle.db")
    try:
        w.submit(persist_shapes.make_simple(1))
        assert w.flush(30)
        nudge = w._nudge = CountingNudge(w._nudge)
        assert w.flush(30)
        assert nudge.puts == 0 and not w._queue
        w.submit(persist_shapes.make_simple(2))  # (the writer still takes new contexts)
        assert w.flush(30)
        assert w.stats()["written"] == 2
    finally:
        w.close()
