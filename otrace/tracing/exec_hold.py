"""``exec_lock``: typed code and trace recording on other threads take turns, boundedly.

With ``exec_lock`` on, a session evaluates typed code inside :meth:`ExecHold.hold`.  While a
hold is on, a traced call on another thread that would record (evaluate its condition, make a
context, break, hold, tag) first waits for the hold to end -- at most :data:`WAIT` seconds,
once per hold: after one wait ran out, the hold is *overdue* and every traced call on other
threads runs untraced at once.  Calls that ran untraced are counted (:attr:`ExecHold.skipped`)
and announced when the hold ends.  The evaluating thread's own traced calls record as usual.

So short evaluations are serialised with trace bookkeeping, as ``exec_lock`` always promised,
and a long or stuck one (``!time.sleep(30)``) costs a program thread at most :data:`WAIT`
once.  A command the service abandons (Ctrl-C, detach) stops holding at once:
:func:`release_thread` is called with the abandoned worker thread, which may go on running
the operator's code in the background without pausing anyone's tracing.

Thread safety: :meth:`ExecHold.hold` on a session's thread; :meth:`ExecHold.admit` on traced
threads (lock-free when no hold is on); :func:`release_thread` from any thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator

WAIT = 0.05  # seconds a traced call waits, once per hold, for typed code to finish

_all: weakref.WeakSet[ExecHold] = weakref.WeakSet()
# Re-entrant: a runtime's construction adds its hold here (WeakSet.add is Python code that
# allocates), and a finalizer run there may use otrace and so build the default runtime --
# adding another (harmless: two adds to a set).
_all_lock = threading.RLock()


class _Hold:
    __slots__ = ("thread", "overdue", "skipped")

    def __init__(self, thread: int) -> None:
        self.thread = thread
        self.overdue = False
        self.skipped = 0


class ExecHold:
    """The holds of one runtime's sessions (see the module docstring).

    :param announce: ``announce(text)`` for the count of untraced calls when a hold ends;
        must not block.
    """

    def __init__(self, announce: Callable[[str], None]) -> None:
        self._announce = announce
        self._cond = threading.Condition(threading.Lock())
        self.holds: list[_Hold] = []  # (replaced whole under the lock; read without it: see admit)
        self.skipped = 0  # traced calls that ran untraced because of a hold, in all
        with _all_lock:
            _all.add(self)

    @property
    def active(self) -> bool:
        return bool(self.holds)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Pause trace recording on other threads while the block runs (bounded for them)."""
        mine = _Hold(threading.get_ident())
        with self._cond:
            self.holds = [*self.holds, mine]
        try:
            yield
        finally:
            self._end([mine])

    def admit(self) -> bool:
        """On a traced thread: True to record this call, False to run it untraced.  Callers
        on the hot path test ``holds`` first (empty: True, without this call).

        Waits at most :data:`WAIT` (once per hold) for holds of other threads to end."""
        holds = self.holds
        if not holds:
            return True
        me = threading.get_ident()
        if any(h.thread == me for h in holds):
            return True  # the typed code's own calls
        deadline = time.monotonic() + WAIT
        # bounded too: the shell's thread holds this lock while it allocates, so a
        # collection there may run a finalizer that waits for a lock this thread holds
        if not self._cond.acquire(timeout=WAIT):
            self.skipped += 1
            return False
        try:
            while True:
                others = [h for h in self.holds if h.thread != me]
                if not others:
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or any(h.overdue for h in others):
                    for h in others:
                        h.overdue = True
                        h.skipped += 1
                    self.skipped += 1
                    return False
                self._cond.wait(left)
        finally:
            self._cond.release()

    def release_thread(self, thread: int) -> None:
        """End the holds of ``thread`` now (its command was abandoned).  Any thread."""
        with self._cond:
            gone = [h for h in self.holds if h.thread == thread]
        if gone:
            self._end(gone)

    def _end(self, gone: list[_Hold]) -> None:
        with self._cond:
            present = [h for h in gone if h in self.holds]
            self.holds = [h for h in self.holds if h not in gone]
            self._cond.notify_all()
        skipped = sum(h.skipped for h in present)
        if skipped:
            self._announce(
                f"exec_lock: {skipped} traced call{'s' if skipped != 1 else ''} on other "
                "threads ran untraced while typed code held the tracing lock"
            )


def _after_fork_in_child() -> None:
    # fork copies only the forking thread: holds of the parent's other threads would pause
    # the child's tracing for good, and a lock they held would stay held
    global _all_lock
    _all_lock = threading.RLock()
    for hold in list(_all):
        hold._cond = threading.Condition(threading.Lock())
        me = threading.get_ident()
        hold.holds = [h for h in hold.holds if h.thread == me]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def release_thread(thread: int) -> None:
    """End the ``exec_lock`` holds of ``thread`` in every runtime (an abandoned command's
    worker thread).  Any thread."""
    with _all_lock:
        holders = list(_all)
    for hold in holders:
        hold.release_thread(thread)
