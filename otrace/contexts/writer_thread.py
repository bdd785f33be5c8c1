"""The bounded background writer every context store back end shares (``set pickle_file``).

:class:`BatchWriter` owns the part of writing that does not depend on where records go:

* :meth:`~BatchWriter.submit`, called on the thread that created a context, freezes it (see
  :mod:`otrace.contexts.sanitize`; cheap) and puts it on a bounded queue (:data:`QUEUE_SIZE`
  by default).  It never blocks and never raises: a full queue drops the context, counted and
  announced once.
* The writer's own thread takes batches off the queue, pickles each value on its own
  (:func:`~otrace.contexts.sanitize.encode`, the one record format every back end stores) and
  hands the rows to the back end's :meth:`~BatchWriter.write_rows`.
* Counts (submitted, written, dropped, failed; a program thread's take no lock) and one
  announcement per kind of trouble.
* ``fork``: the writer thread's I/O is fenced by a lock taken around ``os.fork`` (bounded), so
  a child never inherits a connection half-way through a write; a writer used in a forked
  child starts afresh there (:meth:`~BatchWriter.reopen`).  The wait is bounded because the
  writer allocates under that lock (a finalizer run there may wait for a lock the forking
  thread holds): past ``fork_wait`` the fork goes ahead, and a back end that must not
  follow a write half done (``MID_WRITE_FORK_OK`` False: SQLite) writes nothing in that
  child -- its contexts are dropped there, counted, said once.

A back end subclasses it with :meth:`~BatchWriter.connect`, :meth:`~BatchWriter.write_rows`,
:meth:`~BatchWriter.disconnect` and :meth:`~BatchWriter.abandon`: the SQLite file
(:mod:`otrace.contexts.sqlite_writer`) and PostgreSQL (:mod:`otrace.contexts.postgres.writer`).

Thread safety: see :class:`BatchWriter`.
"""

from __future__ import annotations

import collections
import itertools
import os
import queue
import threading
import weakref
from typing import Any

from otrace.contexts.record import TraceContext
from otrace.contexts.sanitize import DEFAULT_LIMITS, Limits, Snapshot, encode, freeze_context
from otrace.log import announce, get_logger

log = get_logger("pickle")


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class _Tally:
    """A count that program threads add to without a lock (``next`` of an
    :func:`itertools.count` is one step of C code); reading it takes a number too, so reads
    are counted and subtracted (under the writer's count lock)."""

    __slots__ = ("_counter", "_reads", "add")

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._reads = 0
        self.add = self._counter.__next__

    def value(self) -> int:
        """The number of ``add()`` calls so far (callers hold the writer's count lock)."""
        taken = next(self._counter) - self._reads
        self._reads += 1
        return taken


class _Flush:
    """A flush's place in the queue: its lock, taken now, is released by the writer when
    everything before it is written (one bare lock: an Event's Condition allocates a
    second lock per wait and takes three)."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()


_STOP = object()

# A row as the writer hands it to the back end: the snapshot's fields and its pickled bytes.
Row = tuple[Any, ...]

#: Contexts waiting for the writer, at most (the default of ``queue_size``).  A waiting
#: context keeps its whole frame chain alive -- about 22 KB and 85 objects the garbage
#: collector tracks for an exception 20 frames deep -- and while the queue grows the
#: program's own collections scan them all, again and again (in a tight loop of exceptions
#: that cost the traced thread three times the freeze).  A writer takes 1,000-2,000 such
#: contexts a second, so this bound lets a burst of about a second's worth wait; beyond it
#: contexts are dropped (counted, announced once); the newest stay in ``/osh/recent``.
QUEUE_SIZE = 1_000

# The writer thread sleeps until the queue stops being empty (the context that makes it so
# wakes it with a token on a SimpleQueue -- a put never blocks and takes no Python-level
# lock -- one wake-up per batch, not one per context), or flush or close wake it; else it
# looks again after this pause (seconds), doubled while it finds nothing, up to the second.
_PAUSE, _PAUSE_IDLE = 0.05, 1.0


class BatchWriter:
    """Writes frozen contexts from a thread of its own, in batches (abstract; see module).

    :meth:`submit` may be called from any thread and never blocks or raises; :meth:`flush`
    and :meth:`close` may be called from any thread except the writer's own.  The subclass's
    :meth:`connect` runs in the constructor (so an unusable target is refused at once, as a
    :class:`~otrace.errors.StoreError`) and :meth:`write_rows` on the writer thread.
    """

    #: how the writer names its target in announcements and thread names
    label = "?"
    #: how long a fork waits for this writer's thread to finish its current write (seconds)
    fork_wait: float = 2.0
    #: whether a child forked while a write was under way (``fork_wait`` passed) may write
    #: again: True if the child never touches what the parent's write may hold
    MID_WRITE_FORK_OK = True
    #: set in a child forked mid-write (see MID_WRITE_FORK_OK); inherited by its children
    _unfenced = False

    def __init__(
        self,
        *,
        queue_size: int = QUEUE_SIZE,
        batch_size: int = 500,
        limits: Limits = DEFAULT_LIMITS,
        report=announce,
    ) -> None:
        self.limits = limits
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._report_sink = report
        self._closed = False
        self.connect()
        self._start()

    # -- for the back end --------------------------------------------------------------
    def connect(self) -> None:
        """Open the connection, in the constructor (raise StoreError if unusable).  After a
        fork the child's writer thread connects again (see :meth:`write_rows`)."""
        raise NotImplementedError

    def write_rows(self, rows: list[Row]) -> None:
        """Write one batch (writer thread; connect first if not connected); count with
        :meth:`count`, announce trouble with :meth:`report`."""
        raise NotImplementedError

    def disconnect(self) -> None:
        """Close the connection (writer thread, at the end)."""
        raise NotImplementedError

    def abandon(self) -> None:
        """In a forked child: drop the parent's connection without touching it."""
        raise NotImplementedError

    def ready(self) -> bool:
        """False while the target is known to be away (writer thread): a batch is then
        dropped (counted as failed) without pickling it."""
        return True

    def row(self, snap: Snapshot, blob: bytes) -> Row:
        """The row stored for ``snap`` (the shared record fields; back ends may add some)."""
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

    # -- setup -------------------------------------------------------------------------
    def _start(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        # counts: those program threads make (submit) take no lock (see _Tally); the writer
        # thread's, and reading them all, take this one
        self._count_lock = threading.Lock()
        self.written = self.failed = 0
        self._submitted, self._dropped, self._refused = _Tally(), _Tally(), _Tally()
        self._reported: set[str] = set()
        # Held by the writer thread while it pickles and talks to its database, and taken
        # around os.fork() (see _before_fork), so a child does not inherit a write half done.
        self._io_lock = threading.Lock()
        # appended to by program threads, emptied by the writer (both atomic: no lock); the
        # bound is checked before the append, so concurrent submits may pass it by a few
        self._queue: collections.deque[Any] = collections.deque()
        # True from before the writer takes a batch off the queue until it is written (so an
        # empty queue and False mean that all submitted so far is written; see flush)
        self._busy = False
        self._nudge: queue.SimpleQueue[None] = queue.SimpleQueue()  # look now (see _PAUSE)
        _WRITERS.add(self)
        self._thread = threading.Thread(
            target=self._run, name=f"otrace-writer-{self.label}", daemon=True
        )
        self._thread.start()

    def reopen(self) -> bool:
        """In a forked child: leave the parent's connection alone and start over (the new
        writer thread connects; the program thread that noticed the fork does not wait).

        False while another thread -- or a finalizer run on this one by a collection during
        the restart, which allocates -- is restarting a writer: the caller drops its context
        rather than wait (for itself, in the finalizer's case); False for good in a child
        forked mid-write whose back end must not follow one (see MID_WRITE_FORK_OK)."""
        if self._unfenced and not self.MID_WRITE_FORK_OK:
            self.report(
                "fork",
                "this process was forked while its parent's writer was writing; "
                "contexts are not written from it (counted as dropped)",
            )
            return False
        if not _REOPEN.acquire(blocking=False):
            return False
        try:
            if self._pid != os.getpid():
                self.abandon()
                self._start()
        finally:
            _REOPEN.release()
        return True

    # -- any thread --------------------------------------------------------------------
    def submit(self, ctx: TraceContext) -> None:
        """Freeze ``ctx`` now and queue it for writing.  Never blocks, never raises."""
        try:
            if self._closed:
                return
            self._submitted.add()
            if self._pid != _PID[0] and not self.reopen():
                self._dropped.add()  # another thread is restarting the writer
                return
            if len(self._queue) >= self._queue_size:  # dropping costs less: no snapshot
                self._dropped.add()
                self.report(
                    "queue",
                    f"writing cannot keep up; contexts are being dropped (more than "
                    f"{self._queue_size} waiting; the newest stay in /osh/recent)",
                )
                return
            waiting = self._queue
            waiting.append(freeze_context(ctx, self._pid, self.limits))
            if len(waiting) == 1:  # the writer may be asleep
                self._nudge.put(None)
        except Exception as exc:
            self._refused.add()
            self.report("submit", f"cannot snapshot {getattr(ctx, 'id', ctx)!r}: {one_line(exc)}")

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written (or failed); False on timeout."""
        if self._pid != os.getpid():
            return True  # forked, nothing submitted here yet
        if self._closed or not self._thread.is_alive():
            return not self._queue
        if not self._queue and not self._busy:
            # nothing queued, no batch under way: all written.  No round trip to the writer
            # (each wait and wake-up of a thread costs tens of us of CPU on a virtual machine)
            return True
        marker = _Flush()
        self._queue.append(marker)  # past the bound: a marker is tiny, and must not wait
        self._nudge.put(None)
        return marker.done.acquire(timeout=timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (waiting up to ``timeout``), then stop and disconnect."""
        if self._closed:
            return
        self._closed = True
        if self._pid != os.getpid():
            return
        self._queue.append(_STOP)
        self._nudge.put(None)
        self._thread.join(timeout)

    def stats(self) -> dict[str, int]:
        """Counts of contexts submitted, written, dropped (queue full) and failed (errors)."""
        with self._count_lock:
            counts = {
                "submitted": self._submitted.value(),
                "written": self.written,
                "dropped": self._dropped.value(),
                "failed": self.failed + self._refused.value(),
            }
        return {**counts, "queued": len(self._queue)}

    def _count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the count ``written`` or ``failed`` (the writer thread; a short lock)."""
        with self._count_lock:
            setattr(self, name, getattr(self, name) + n)

    count = _count  # for back ends

    def report(self, kind: str, message: str, *, once: bool = True) -> None:
        """Announce ``message`` (the first time for ``kind`` unless ``once`` is False)."""
        if once:
            if kind in self._reported:  # (said already: no lock for a context dropped)
                return
            with self._lock:
                if kind in self._reported:
                    return
                self._reported.add(kind)
        text = f"otrace: pickle_file {self.label}: {message}" + (" (reported once)" if once else "")
        log.info("%s", text)
        try:
            self._report_sink(text)
        except Exception:
            pass

    def forget_reports(self, *kinds: str) -> None:
        """Let ``kinds`` be announced again (say, after a database came back)."""
        with self._lock:
            self._reported.difference_update(kinds)

    # -- writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        stop = False
        waiting, nudge, pause = self._queue, self._nudge, _PAUSE
        while not stop:
            if not waiting:
                try:
                    nudge.get(timeout=pause)
                    pause = _PAUSE
                except queue.Empty:
                    pause = min(pause * 2, _PAUSE_IDLE)
                continue
            pause = _PAUSE
            self._busy = True
            try:
                stop, markers = self._batch()
            finally:
                self._busy = False
            for marker in markers:  # (after _busy: a flush it wakes finds the writer idle)
                marker.done.release()
        try:
            self.disconnect()
        except Exception:
            pass

    def _batch(self) -> tuple[bool, list[_Flush]]:
        """Write one batch off the queue (writer thread): whether it held the stop sign, and
        the flushes it held."""
        waiting, nudge, stop = self._queue, self._nudge, False
        items: list[Any] = []
        take = waiting.popleft
        while waiting and len(items) < self._batch_size:
            items.append(take())
        # wake-ups sent while the writer was busy are stale now (unlike an Event's,
        # tokens add up: a busy writer would keep one per batch it took)
        while nudge.qsize():
            nudge.get_nowait()
        rows: list[Row] = []
        markers: list[_Flush] = []
        ready = self.ready()
        away = 0
        for item in items:  # (pickled outside the I/O lock: a fork waits less)
            if item is _STOP:
                stop = True
            elif isinstance(item, _Flush):
                markers.append(item)
            elif isinstance(item, Snapshot):
                if not ready:
                    away += 1
                    continue
                row = self._encode(item)
                if row is not None:
                    rows.append(row)
        if away:
            self.count("failed", away)
        if rows:
            try:
                with self._io_lock:
                    self.write_rows(rows)
            except Exception as exc:  # never let the thread die
                self.count("failed", len(rows))
                self.report("write", f"cannot write: {one_line(exc)}")
        # the batch's snapshots (and the program frames they keep) go before a flush returns
        items.clear()
        rows.clear()
        return stop, markers

    def _encode(self, snap: Snapshot) -> Row | None:
        try:
            blob = encode(snap, self.limits)
        except Exception as exc:
            self.count("failed")
            self.report("encode", f"cannot pickle {snap.key}: {one_line(exc)}")
            return None
        return self.row(snap, blob)


# Fork bookkeeping is process-wide by nature (os.register_at_fork is): live writers, those
# whose I/O lock is held across a fork, and those whose lock the fork could not take.
_WRITERS: weakref.WeakSet[BatchWriter] = weakref.WeakSet()
_HELD: list[BatchWriter] = []
_UNFENCED: list[BatchWriter] = []
_REOPEN = threading.Lock()  # one program thread of a forked child restarts a writer
# this process's id, kept up to date at fork (submit compares it without a system call)
_PID = [os.getpid()]


def _before_fork() -> None:
    # Bounded: the writer thread allocates under its I/O lock, and a finalizer run there may
    # wait for a lock the forking thread holds (see the module docstring).
    for w in list(_WRITERS):
        if w._io_lock.acquire(timeout=w.fork_wait):
            _HELD.append(w)
        else:
            _UNFENCED.append(w)


def _after_fork_in_parent() -> None:
    _UNFENCED.clear()
    while _HELD:
        _HELD.pop()._io_lock.release()


def _after_fork_in_child() -> None:
    # the writer threads did not come along; their locks are ours to drop
    global _REOPEN
    _PID[0] = os.getpid()
    _REOPEN = threading.Lock()
    _HELD.clear()
    while _UNFENCED:
        _UNFENCED.pop()._unfenced = True
    for w in list(_WRITERS):  # (its report and count locks too: the writer takes them)
        w._io_lock, w._lock, w._count_lock = threading.Lock(), threading.Lock(), threading.Lock()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
