"""The writer thread that puts trace contexts into a context file (``set pickle_file``).

A :class:`PickleWriter` owns one file.  :meth:`PickleWriter.submit`, called on the thread
that created a context, freezes it (see :mod:`otrace.contexts.sanitize`; cheap) and puts it
on a bounded queue; the writer's own thread pickles and inserts the queued contexts in
batches, one transaction each.  The traced program never waits on the disk: if the queue is
full the context is dropped and counted, and a full disk, a locked file or any other write
error is announced once per kind of error while the program carries on.

Several processes may write to one file: a write that finds the file locked is retried.  A
writer inherited through ``fork`` starts afresh in the child (see :func:`_before_fork`).

Thread safety: see :class:`PickleWriter`.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from otrace.contexts.record import TraceContext
from otrace.contexts.sanitize import DEFAULT_LIMITS, Limits, Snapshot, encode, freeze_context
from otrace.contexts.sqlite_format import (
    BUSY,
    FULL,
    INSERT,
    LOCKED,
    connect,
    error_code,
    one_line,
)
from otrace.log import announce, get_logger

log = get_logger("pickle")


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class PickleWriter:
    """Writes trace contexts to one pickle file from a thread of its own.

    :meth:`submit` may be called from any thread and never blocks or raises; :meth:`flush`
    and :meth:`close` may be called from any thread except the writer's own.
    Opening checks the file at once and raises :class:`StoreError` if it cannot be used.

    ``max_file_bytes`` caps the database size (writes beyond it fail as a full disk would).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        busy_timeout: float = 5.0,
        retries: int = 5,
        limits: Limits = DEFAULT_LIMITS,
        max_file_bytes: int | None = None,
        report=announce,
    ) -> None:
        self.path = Path(path)
        self.limits = limits
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._busy_timeout = busy_timeout
        self._retries = retries
        self._max_file_bytes = max_file_bytes
        self._report_sink = report
        # the counts change on program threads (submit) and on the writer thread at once;
        # each change is made under _count_lock, a short lock nobody waits on for long
        self._count_lock = threading.Lock()
        self.submitted = self.written = self.dropped = self.failed = 0
        self._reported: set[str] = set()
        self._closed = False
        self._start(connect(self.path, create=True, busy_timeout=busy_timeout))

    def _start(self, conn: sqlite3.Connection) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        # Held by the writer thread while it pickles and talks to SQLite, and taken around
        # os.fork() (see _before_fork), so a child never inherits SQLite or pickle state
        # half-way through a write -- the classic fork-with-threads deadlock.
        self._io_lock = threading.Lock()
        _WRITERS.add(self)
        self._queue: queue.Queue[Any] = queue.Queue(self._queue_size)
        if self._max_file_bytes:
            page = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {max(1, self._max_file_bytes // page)}")
        self._conn = conn
        self._thread = threading.Thread(
            target=self._run, name=f"otrace-pickle-{self.path.name}", daemon=True
        )
        self._thread.start()

    def _after_fork(self) -> None:
        """In a forked child: leave the parent's connection alone and start over."""
        _LEAKED.append(self._conn)  # closing it here could disturb the parent's locks
        self._count_lock = threading.Lock()
        self.submitted = self.written = self.dropped = self.failed = 0
        self._reported = set()
        self._start(connect(self.path, create=True, busy_timeout=self._busy_timeout))

    # -- any thread --------------------------------------------------------------------
    def submit(self, ctx: TraceContext) -> None:
        """Freeze ``ctx`` now and queue it for writing.  Never blocks, never raises."""
        try:
            if self._closed:
                return
            if self._pid != os.getpid():
                self._after_fork()
            snap = freeze_context(ctx, self._pid, self.limits)
            self._count("submitted")
            self._queue.put_nowait(snap)
        except queue.Full:
            self._count("dropped")
            self._report("queue", "writing cannot keep up; contexts are being dropped")
        except Exception as exc:
            self._count("failed")
            self._report("submit", f"cannot snapshot {getattr(ctx, 'id', ctx)!r}: {one_line(exc)}")

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written (or failed); False on timeout."""
        if self._pid != os.getpid():
            return True  # forked, nothing submitted here yet
        if self._closed or not self._thread.is_alive():
            return self._queue.empty()
        marker = _Flush()
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.done.wait(max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (waiting up to ``timeout``), then stop and close the file."""
        if self._closed:
            return
        self._closed = True
        if self._pid != os.getpid():
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)

    def stats(self) -> dict[str, int]:
        """Counts of contexts submitted, written, dropped (queue full) and failed (errors)."""
        with self._count_lock:
            counts = {
                "submitted": self.submitted,
                "written": self.written,
                "dropped": self.dropped,
                "failed": self.failed,
            }
        return {**counts, "queued": self._queue.qsize()}

    def _count(self, name: str, n: int = 1) -> None:
        with self._count_lock:
            setattr(self, name, getattr(self, name) + n)

    def _report(self, kind: str, message: str) -> None:
        with self._lock:
            if kind in self._reported:
                return
            self._reported.add(kind)
        text = f"otrace: pickle_file {self.path}: {message} (reported once)"
        log.info("%s", text)
        try:
            self._report_sink(text)
        except Exception:
            pass

    # -- writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        conn = self._conn
        stop = False
        while not stop:
            items = [self._queue.get()]
            while len(items) < self._batch_size:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rows = []
            markers = []
            with self._io_lock:
                for item in items:
                    if item is _STOP:
                        stop = True
                    elif isinstance(item, _Flush):
                        markers.append(item)
                    elif isinstance(item, Snapshot):
                        row = self._encode(item)
                        if row is not None:
                            rows.append(row)
                if rows:
                    self._write(conn, rows)
            for marker in markers:
                marker.done.set()
        try:
            conn.close()
        except sqlite3.Error:
            pass

    def _encode(self, snap: Snapshot) -> tuple | None:
        try:
            blob = encode(snap, self.limits)
        except Exception as exc:
            self._count("failed")
            self._report("encode", f"cannot pickle {snap.key}: {one_line(exc)}")
            return None
        return (
            snap.key,
            snap.kind,
            snap.name,
            snap.ctxid,
            snap.timestamp,
            snap.created,
            snap.pid,
            blob,
        )

    def _write(self, conn: sqlite3.Connection, rows: list[tuple]) -> None:
        delay = 0.05
        for attempt in range(self._retries + 1):
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(INSERT, rows)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                self._count("written", len(rows))
                return
            except sqlite3.Error as exc:
                code = error_code(exc)
                if code in (BUSY, LOCKED) and attempt < self._retries:
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                self._count("failed", len(rows))
                if code == FULL:
                    self._report(
                        "full",
                        f"disk or file full; contexts are not being saved ({one_line(exc)})",
                    )
                elif code in (BUSY, LOCKED):
                    self._report(
                        "locked",
                        f"file stays locked; contexts are being dropped ({one_line(exc)})",
                    )
                else:
                    self._report("write", f"cannot write: {one_line(exc)}")
                return
            except Exception as exc:  # pragma: no cover - defensive: never kill the thread
                self._count("failed", len(rows))
                self._report("write", f"cannot write: {one_line(exc)}")
                return


# Fork bookkeeping is process-wide by nature (os.register_at_fork is): connections a forked
# child must not close, live writers, and writers whose I/O lock is held across a fork.
_LEAKED: list[sqlite3.Connection] = []
_WRITERS: weakref.WeakSet[PickleWriter] = weakref.WeakSet()
_HELD: list[PickleWriter] = []


def _before_fork() -> None:
    """Wait until no writer thread is inside SQLite or pickle, and keep it out during fork."""
    for w in list(_WRITERS):
        w._io_lock.acquire()
        _HELD.append(w)


def _after_fork_in_parent() -> None:
    while _HELD:
        _HELD.pop()._io_lock.release()


def _after_fork_in_child() -> None:
    # the writer threads did not come along; their locks are ours to drop
    while _HELD:
        _HELD.pop()._io_lock = threading.Lock()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
