"""Fork safety of otrace's runtimes: no lock is inherited held, no writer shared by accident.

``fork()`` copies only the forking thread.  A lock another thread held at that moment stays
held for ever in the child, and the first traced call there would hang.  Around every fork
(``os.register_at_fork``, so ``tornado.process.fork_processes``, ``multiprocessing``'s fork
start method and a plain ``os.fork`` are all covered):

* **before**: the forking thread takes every lock of every live runtime (the store's, the
  holds table's, the tracer's, the event bus's, the parameters', the patch table's, the
  persistence hook's, each trace spec's) and otrace's process-wide locks -- each wait bounded
  (:data:`WAIT`), since these locks are only ever held briefly; so the child starts from
  consistent tables;
* **in the parent**: it releases what it took;
* **in the child**: every one of those locks is re-initialised in place (held or not), and
  the child's :attr:`FORKS` count grows.  Context writers start afresh in the child on their
  own: a SQLite or PostgreSQL writer notices the new pid on its first context, leaves the
  parent's connection untouched and connects again from a new writer thread (see
  :mod:`otrace.contexts.writer_thread` and :mod:`otrace.contexts.sqlite`).

What a child does not get back is threads: an embedded console's thread or a traceback
server's loop stay in the parent (the attachable service gives each process its own).

Thread safety: the hooks run on the forking thread, with the other threads of the parent
running on; :func:`runtime_locks` may be called from any thread.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

from otrace import _default
from otrace.contexts import record
from otrace.tracing import wrapper_inline

#: how long ``fork`` waits for each lock another thread holds (seconds)
WAIT = 0.5
#: forks this process has been through (0 in the original process); process-wide by nature
FORKS = 0

# Fork bookkeeping is process-wide by nature: the live runtimes, and the locks taken for a fork.
_RUNTIMES: weakref.WeakSet[Any] = weakref.WeakSet()
_TAKEN: list[Any] = []


def register(rt: Any) -> None:
    """Make ``rt`` fork-safe (the :class:`~otrace.runtime.Runtime` constructor calls this)."""
    _RUNTIMES.add(rt)


def runtime_locks(rt: Any) -> list[Any]:
    """Every lock of ``rt``'s parts, outermost first (the order the shell takes them in)."""
    locks = [
        rt.tracer.lock,
        rt.patches.lock,
        rt.persistence.lock,
        rt.store._lock,
        rt.holds._lock,
        rt.params._lock,
        rt.events._lock,
    ]
    for spec in list(rt.tracer.registry.values()):
        lock = getattr(spec, "_lock", None)
        if lock is not None:
            locks.append(lock)
    return locks


def _all_locks() -> list[Any]:
    locks = []
    for rt in list(_RUNTIMES):
        locks.extend(runtime_locks(rt))
    locks += [_default._lock, record._ts_lock, wrapper_inline._shapes_lock]
    return locks


def _before() -> None:
    for lock in _all_locks():
        try:
            if lock.acquire(timeout=WAIT):
                _TAKEN.append(lock)
        except Exception:
            pass


def _after_in_parent() -> None:
    while _TAKEN:
        try:
            _TAKEN.pop().release()
        except Exception:
            pass


def _after_in_child() -> None:
    global FORKS
    FORKS += 1
    _TAKEN.clear()
    for lock in _all_locks():
        try:
            lock._at_fork_reinit()  # the stdlib's own in-place reset (logging uses it too)
        except Exception:
            pass


os.register_at_fork(
    before=_before, after_in_parent=_after_in_parent, after_in_child=_after_in_child
)
