"""Pending breaks (blocked threads) and holds (suspended asyncio tasks), and ``resume``.

A *break* blocks the thread that hit it on a :class:`threading.Event` until the operator
resumes it.  A *hold* is an :class:`asyncio.Future` created on the running loop of the task
that awaits it; the task is suspended while the loop keeps serving everything else.

Both are registered in one table, keyed by trace id, the moment they are created, and their
context's ``live`` attribute points to them (an object with ``release(value=None)``), so the
store (``del``, ``clear``) and the shell see them at once.  When a break or hold ends, the
context's ``__trc["released"]`` says why: ``"resumed"``, ``"shutdown"``, ``"deleted"``,
``"cancelled"`` (the awaiting task was cancelled) or whatever reason the caller gave (the
console uses ``"disconnected"``).

The table is a :class:`HoldTable` owned by the runtime (``rt.holds``,
``otrace/holds/table.py``); ``otrace/holds/door.py`` is the door to the event loop
(running a function or a coroutine there from another thread).  The module-level functions
here act on the default runtime's table, for program code and tests.

Thread rules:

* :func:`new_break` and :meth:`Break.wait` run on the traced thread (which then blocks).
  A thread running an asyncio event loop must not block: :func:`can_block` says whether the
  current thread may (the tracing engine refuses a break otherwise and points to ``hold``).
  Threads listed in :attr:`HoldTable.no_break_threads` (the console adds its own) are refused
  too.
* :func:`new_hold` must be called on the event-loop thread, inside a running loop.
* :func:`resume`, :func:`release_all`, :func:`pending`, :func:`held_by` and
  :meth:`release` may be called from any thread.  A hold's future is only ever resolved on
  its loop: directly when released on that loop's thread, else through
  ``loop.call_soon_threadsafe`` (or the process-wide override set with
  :func:`set_eventloop_callback`), one callback per loop for a whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otrace import _default
from otrace.contexts.record import TraceContext
from otrace.holds.door import AwaitError, LoopBusy, LoopDoor, running_loop
from otrace.holds.table import Break, Hold, HoldTable, TableBusy

__all__ = [
    "AwaitError",
    "Break",
    "Hold",
    "HoldTable",
    "LoopBusy",
    "LoopDoor",
    "TableBusy",
    "call_on_loop",
    "can_block",
    "eventloop_callback",
    "get",
    "held_by",
    "new_break",
    "new_hold",
    "pending",
    "release_all",
    "resume",
    "run_coroutine",
    "running_loop",
    "set_eventloop_callback",
]


# -- the default runtime's table (program code and tests) ------------------------------------


def _table() -> HoldTable:
    return _default.get().holds


def set_eventloop_callback(callback: LoopDoor | None) -> None:
    """:meth:`HoldTable.set_eventloop_callback` of the default runtime."""
    _table().set_eventloop_callback(callback)


def eventloop_callback() -> LoopDoor | None:
    return _table().eventloop_callback()


def call_on_loop(
    func: Callable[[], Any], timeout: float = 10.0, callback: LoopDoor | None = None
) -> Any:
    return _table().call_on_loop(func, timeout, callback)


def can_block() -> bool:
    return _table().can_block()


def new_break(ctx: TraceContext) -> Break:
    return _table().new_break(ctx)


def new_hold(ctx: TraceContext) -> Hold:
    return _table().new_hold(ctx)


def get(ctx_or_id: TraceContext | str) -> Break | Hold | None:
    return _table().get(ctx_or_id)


def pending() -> list[TraceContext]:
    return _table().pending()


def held_by(owner: object) -> list[TraceContext]:
    return _table().held_by(owner)


def resume(
    ctx_or_id: TraceContext | str,
    value: Any = None,
    *,
    reason: str = "resumed",
    error: BaseException | None = None,
) -> bool:
    return _table().resume(ctx_or_id, value, reason=reason, error=error)


def run_coroutine(coro: Any, timeout: float, loop: Any = None) -> Any:
    return _table().run_coroutine(coro, timeout, loop)


def release_all(reason: str = "shutdown") -> int:
    return _table().release_all(reason)
