"""A batch of the SQLite writer goes in as a few multi-row INSERTs (see sqlite_writer's
CHUNK_ROWS), in one transaction: exactly, in order, retried whole on a locked file, rolled
back whole when the file is full."""

from __future__ import annotations

import os
import sqlite3
import threading

import persist_shapes
import pytest

from otrace.contexts import sqlite as store_sqlite
from otrace.contexts import sqlite_writer
from otrace.contexts.record import TraceContext

pytestmark = pytest.mark.timeout(120)


class Watched(sqlite_writer.PickleWriter):
    """A PickleWriter that records the statements SQLite runs, per batch."""

    def connect(self) -> None:
        super().connect()
        self.statements: list[list[str]] = []
        self.handed: list[tuple] = []  # the rows write_rows was given
        self.begun, self.retried = threading.Event(), threading.Event()
        assert self._conn is not None
        self._conn.set_trace_callback(self._traced)

    def _traced(self, sql: str) -> None:  # writer thread
        if sql.startswith("BEGIN"):
            self.statements.append([])
            (self.retried if self.begun.is_set() else self.begun).set()
        if self.statements:
            self.statements[-1].append(sql.split(" (", 1)[0])

    def write_rows(self, rows):  # writer thread
        self.handed.extend(rows)
        super().write_rows(rows)

    def inserts(self) -> list[int]:
        """INSERT statements per transaction attempt."""
        return [sum(s.startswith("INSERT") for s in batch) for batch in self.statements]


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(sqlite_writer, "CHUNK_ROWS", 4)


def one_batch(w: Watched, contexts: list[TraceContext], *, retried: bool = False) -> None:
    """Submit ``contexts`` so that all but the first reach the writer as one batch: the
    first holds the writer on a locked file while the others queue up behind it (until the
    writer has begun a transaction twice, i.e. retried, if ``retried``)."""
    blocker = sqlite3.connect(w.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        w.submit(contexts[0])
        assert w.begun.wait(30)  # the writer is at the lock with the first one alone
        for ctx in contexts[1:]:
            w.submit(ctx)
        assert not retried or w.retried.wait(30)
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert w.flush(30)


def test_chunk_rows_follows_sqlites_variable_limit(tmp_path):
    conn = sqlite3.connect(tmp_path / "limit.db")
    try:
        for limit, rows in ((999, 64), (8 * 3, 2), (8, 1)):  # SQLite's own bound >= 999
            conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
            assert sqlite_writer.chunk_rows(conn) == rows, limit
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)  # 999 before SQLite 3.32
        if conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) >= 8 * sqlite_writer.CHUNK_ROWS:
            assert sqlite_writer.chunk_rows(conn) == sqlite_writer.CHUNK_ROWS
    finally:
        conn.close()


def test_a_batch_of_many_chunks_goes_in_exactly_in_order_after_a_locked_file(
    tmp_path, small_chunks
):
    path = tmp_path / "chunks.db"
    w = Watched(path, busy_timeout=0.2, retries=20)
    contexts = [persist_shapes.make_simple(i) for i in range(23)]
    one_batch(w, contexts, retried=True)
    stats = w.stats()
    w.close()
    assert (stats["written"], stats["failed"]) == (23, 0), stats
    # the first context's batch met the lock (retried), the 22 others went in as 4*5 + 2
    attempts = w.inserts()
    assert len(attempts) >= 3 and attempts[0] == 0, w.statements
    assert attempts[-2:] == [1, 6], w.statements
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT recnum, key, kind, methodname, context_id, timestamp, created, pid,"
            " pickled_object FROM otrace_context ORDER BY recnum"
        ).fetchall()
    finally:
        conn.close()
    assert [r[0] for r in rows] == list(range(1, 24))
    assert [r[1:] for r in rows] == w.handed  # every column, in the order submitted
    assert [r[1] for r in rows] == [ctx.id for ctx in contexts]
    assert {r[7] for r in rows} == {os.getpid()}
    tree = store_sqlite.open_pickled(path)
    try:
        assert [tree.load(recnum)["i"] for recnum in range(1, 24)] == list(range(23))
    finally:
        tree.close()


def test_a_full_file_mid_batch_rolls_the_whole_batch_back(tmp_path, small_chunks, announced):
    path = tmp_path / "full.db"
    w = Watched(path, max_file_bytes=128 * 1024, busy_timeout=0.2, retries=20)
    big = [
        TraceContext("traces", "Big.write", "call", {"i": i, "blob": os.urandom(12_000)})
        for i in range(12)
    ]
    one_batch(w, [persist_shapes.make_simple(0), *big])
    stats = w.stats()
    w.close()
    assert (stats["written"], stats["failed"]) == (1, 12), stats
    assert sum("full" in a for a in announced) == 1
    # the file filled up after the batch's first chunk had gone in: it went back out
    assert w.inserts()[-1] >= 2, w.statements
    assert store_sqlite.open_pickled(path).count() == 1
