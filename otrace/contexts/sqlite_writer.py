"""The writer thread that puts trace contexts into a context file (``set pickle_file``).

A :class:`PickleWriter` owns one file.  It is a
:class:`~otrace.contexts.writer_thread.BatchWriter` (the model every back end shares):
:meth:`~otrace.contexts.writer_thread.BatchWriter.submit`, called on the thread that created a
context, freezes it and puts it on a bounded queue; the writer's own thread pickles and
inserts the queued contexts in batches, one transaction each.  The traced program never waits
on the disk: if the queue is full the context is dropped and counted, and a full disk, a
locked file or any other write error is announced once per kind of error while the program
carries on.

Several processes may write to one file: a write that finds the file locked is retried.  A
writer inherited through ``fork`` starts afresh in the child; the fork waits (unbounded, as
SQLite's own locks require) until the writer thread is out of SQLite and pickle.

Thread safety: see :class:`~otrace.contexts.writer_thread.BatchWriter`.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from otrace.contexts.sqlite_format import (
    BUSY,
    COLUMNS,
    FULL,
    LOCKED,
    connect,
    error_code,
    insert_many,
    one_line,
)
from otrace.contexts.writer_thread import BatchWriter, Row

# Connections a forked child inherited: closing them there could disturb the parent's locks,
# so they are kept, unused, for the child's lifetime.  Process-wide by nature.
_LEAKED: list[sqlite3.Connection] = []

# Rows per INSERT statement, at most.  Every sqlite3 call releases the GIL (executemany: about
# four per row), and while the program computes, a writer that lost the GIL gets it back only a
# switch interval (5 ms) later: beside a tight loop of exceptions a batch of 500 big rows met
# up to 140 such waits.  A batch goes in as a few statements of 2**k rows instead (about 40
# releases for 500 rows) -- powers of two, so the connection's statement cache holds a few of
# them, not one per batch size.  SQLite's variable limit may lower it (999 before 3.32: 64).
CHUNK_ROWS = 256


def chunk_rows(conn: sqlite3.Connection) -> int:
    """The most rows one INSERT takes on ``conn``: a power of two, at most CHUNK_ROWS."""
    most = min(CHUNK_ROWS, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // COLUMNS)
    size = 1
    while size * 2 <= most:
        size *= 2
    return size


class PickleWriter(BatchWriter):
    """Writes trace contexts to one pickle file from a thread of its own.

    :meth:`submit` may be called from any thread and never blocks or raises; :meth:`flush`
    and :meth:`close` may be called from any thread except the writer's own.
    Opening checks the file at once and raises :class:`StoreError` if it cannot be used.

    ``max_file_bytes`` caps the database size (writes beyond it fail as a full disk would).
    """

    # SQLite keeps process-wide mutexes: a child must never follow a write half done.  The
    # fork waits up to busy_timeout's default for it to end; past that (a finalizer on the
    # writer thread waiting for the forking thread, or a file locked that long) the child
    # writes nothing (see writer_thread's module docstring)
    fork_wait = 5.0
    MID_WRITE_FORK_OK = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        retries: int = 5,
        max_file_bytes: int | None = None,
        **options: Any,
    ) -> None:
        self.path = Path(path)
        self.label = str(self.path)
        self._busy_timeout = busy_timeout
        self._retries = retries
        self._max_file_bytes = max_file_bytes
        self._conn: sqlite3.Connection | None = None
        self._chunk = 1
        super().__init__(**options)

    # -- BatchWriter -------------------------------------------------------------------
    def connect(self) -> None:
        conn = connect(self.path, create=True, busy_timeout=self._busy_timeout)
        if self._max_file_bytes:
            page = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {max(1, self._max_file_bytes // page)}")
        self._chunk = chunk_rows(conn)
        self._conn = conn

    def disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def abandon(self) -> None:
        if self._conn is not None:
            _LEAKED.append(self._conn)
        self._conn = None

    def insert(self, conn: sqlite3.Connection, rows: list[Row]) -> None:
        """Insert ``rows``, in order, inside the open transaction (writer thread): one
        statement per chunk of 2**k rows, the largest that fits first (see CHUNK_ROWS)."""
        start, left = 0, len(rows)
        while left:
            size = self._chunk
            while size > left:
                size //= 2
            chunk = rows[start : start + size]
            conn.execute(insert_many(size), [value for row in chunk for value in row])
            start, left = start + size, left - size

    def write_rows(self, rows: list[Row]) -> None:
        if self._conn is None:  # a forked child's first batch
            try:
                self.connect()
            except Exception as exc:
                self.count("failed", len(rows))
                self.report("open", f"cannot open: {one_line(exc)}")
                return
        conn = self._conn
        assert conn is not None
        delay = 0.05
        for attempt in range(self._retries + 1):
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self.insert(conn, rows)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                self.count("written", len(rows))
                return
            except sqlite3.Error as exc:
                code = error_code(exc)
                if code in (BUSY, LOCKED) and attempt < self._retries:
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                self.count("failed", len(rows))
                if code == FULL:
                    self.report(
                        "full",
                        f"disk or file full; contexts are not being saved ({one_line(exc)})",
                    )
                elif code in (BUSY, LOCKED):
                    self.report(
                        "locked",
                        f"file stays locked; contexts are being dropped ({one_line(exc)})",
                    )
                else:
                    self.report("write", f"cannot write: {one_line(exc)}")
                return
