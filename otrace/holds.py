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

The table is a :class:`HoldTable` owned by the runtime (``rt.holds``); the module-level
functions act on the default runtime's table, for program code and tests.

Thread rules:

* :func:`new_break` and :meth:`Break.wait` run on the traced thread (which then blocks).
  A thread running an asyncio event loop must not block: :func:`can_block` says whether the
  current thread may (the tracing engine refuses a break otherwise and points to ``hold``).
  Threads listed in :attr:`HoldTable.no_break_threads` (the console adds its own) are refused
  too.
* :func:`new_hold` must be called on the event-loop thread, inside a running loop.
* :func:`resume`, :func:`release_all`, :func:`pending` and :meth:`release` may be called from
  any thread.  A hold's future is only ever resolved on its loop, through
  ``loop.call_soon_threadsafe`` (or the process-wide override set with
  :func:`set_eventloop_callback`).

This module stays whole (about 425 lines): the table, its ``Break``/``Hold`` items (which call
back into their table) and the default-runtime functions are one state machine with one lock.
"""

from __future__ import annotations

import concurrent.futures
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from otrace import _default
from otrace.contexts.record import TraceContext
from otrace.errors import OTraceError
from otrace.events import HoldRegistered, HoldReleased
from otrace.log import get_logger

if TYPE_CHECKING:
    from otrace.contexts.store import ContextStore
    from otrace.events import EventBus

log = get_logger("holds")

LoopDoor = Callable[[Callable[[], None]], Any]


class LoopBusy(TimeoutError):
    """A call started on the event loop but did not finish in time (it may still)."""


class AwaitError(OTraceError):
    """An ``await`` typed at the prompt could not run or did not finish in time."""


def running_loop() -> Any:
    """The asyncio loop running in this thread, or None (no asyncio import cost)."""
    aio = sys.modules.get("asyncio")
    if aio is None:
        return None
    return aio._get_running_loop()


class HoldTable:
    """The pending breaks and holds of one runtime, and its door to the event loop."""

    def __init__(self, store: ContextStore, events: EventBus) -> None:
        self.store = store
        self.events = events
        self._lock = threading.Lock()
        self._pending: dict[str, Break | Hold] = {}
        self._door: LoopDoor | None = None
        #: Idents of threads that must never block on a break (e.g. the console's own thread).
        self.no_break_threads: set[int] = set()

    # -- the event-loop door ---------------------------------------------------------------
    def set_eventloop_callback(self, callback: LoopDoor | None) -> None:
        """Resolve holds with ``callback(fn)`` (must run ``fn`` on the loop; thread-safe).

        ``None`` restores the default, ``loop.call_soon_threadsafe`` of the hold's own loop.
        Call from any thread (typically at start-up).
        """
        self._door = callback

    def eventloop_callback(self) -> LoopDoor | None:
        """The program's thread-safe door to its event loop, if one was set.  Any thread."""
        return self._door

    def call_on_loop(
        self, func: Callable[[], Any], timeout: float = 10.0, callback: LoopDoor | None = None
    ) -> Any:
        """Run ``func`` on the program's event loop and wait for its result.

        The call goes through ``callback`` (default: the door set with
        :meth:`set_eventloop_callback`); without any door, or on a thread that runs an event
        loop itself (waiting would deadlock), ``func`` runs right here.  ``func``'s exception
        is re-raised here.  TimeoutError if the loop has not started ``func`` within
        ``timeout`` seconds -- it then never runs; :class:`LoopBusy` (a TimeoutError) if it
        started but has not finished within another ``timeout`` seconds.  Every wait is
        bounded, and the caller must hold no lock the loop may need.  For other threads (the
        shell's).
        """
        door = callback if callback is not None else self._door
        if door is None or running_loop() is not None:
            return func()
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def job() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(func())
            except BaseException as exc:  # noqa: B036 - handed back to the waiting thread
                fut.set_exception(exc)

        door(job)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            if fut.cancel():
                raise TimeoutError(
                    f"the event loop did not run {func!r} within {timeout:g}s"
                ) from None
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            raise LoopBusy(f"{func!r} started on the event loop but did not finish") from None

    def run_coroutine(self, coro: Any, timeout: float, loop: Any = None) -> Any:
        """Run ``coro`` as a task on the program's event loop and wait for its result.

        ``loop`` (an asyncio loop) is used when given (a held task's own loop), else the
        door.  Other requests go on meanwhile.  After ``timeout`` seconds, or on
        KeyboardInterrupt, the task is cancelled and :class:`AwaitError` raised; the
        coroutine's own exception is re-raised here.  For other threads than the loop's
        (the shell's).
        """
        door = loop.call_soon_threadsafe if loop is not None else self._door
        if door is None or running_loop() is not None:
            coro.close()
            raise AwaitError(
                "await cannot wait here: this thread runs an event loop"
                if door is not None
                else "await needs the program's event loop: call otrace.tornado.attach, "
                "or give OShell an eventloop_callback"
            )
        fut: concurrent.futures.Future = concurrent.futures.Future()
        tasks: list[Any] = []

        def start() -> None:
            if not fut.set_running_or_notify_cancel():
                coro.close()
                return
            try:
                task = sys.modules["asyncio"].ensure_future(coro)
            except BaseException as exc:  # noqa: B036 - handed back to the waiting thread
                coro.close()
                fut.set_exception(exc)
                return
            tasks.append(task)
            task.add_done_callback(lambda t: _copy_outcome(t, fut))

        def cancel() -> None:
            for task in tasks:
                task.cancel()

        door(start)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            why = f"await did not finish within {timeout:g}s (await_timeout); cancelled"
        except KeyboardInterrupt:
            why = "await interrupted; the task was cancelled"
        if not fut.cancel():
            door(cancel)
        raise AwaitError(why)

    def can_block(self) -> bool:
        """True if the current thread may block on a break (no running loop, not exempt)."""
        return running_loop() is None and threading.get_ident() not in self.no_break_threads

    # -- the table -------------------------------------------------------------------------
    def _register(self, item: Break | Hold) -> None:
        with self._lock:
            self._pending[item.ctx.id] = item
        item.ctx.live = item
        self.events.emit(HoldRegistered(item.ctx, item.kind))

    def _forget(self, item: _Pending) -> None:
        with self._lock:
            if self._pending.get(item.ctx.id) is item:
                del self._pending[item.ctx.id]

    def new_break(self, ctx: TraceContext) -> Break:
        """Register a break for ``ctx`` (before the context is stored); traced thread."""
        item = Break(ctx, self)
        self._register(item)
        return item

    def new_hold(self, ctx: TraceContext) -> Hold:
        """Register a hold for ``ctx`` on the running loop; event-loop thread only.

        Raises RuntimeError when no loop runs in this thread.
        """
        loop = running_loop()
        if loop is None:
            raise RuntimeError("a hold needs a running asyncio event loop")
        item = Hold(ctx, loop, self)
        self._register(item)
        return item

    def get(self, ctx_or_id: TraceContext | str) -> Break | Hold | None:
        """The pending break or hold of a context (or trace id), if any.  Any thread."""
        trace_id = ctx_or_id if isinstance(ctx_or_id, str) else ctx_or_id.id
        with self._lock:
            return self._pending.get(trace_id)

    def pending(self) -> list[TraceContext]:
        """Contexts whose break or hold still waits, oldest first.  Any thread."""
        with self._lock:
            items = list(self._pending.values())
        return sorted((i.ctx for i in items), key=lambda c: c.created)

    def resume(
        self,
        ctx_or_id: TraceContext | str,
        value: Any = None,
        *,
        reason: str = "resumed",
        error: BaseException | None = None,
    ) -> bool:
        """Release a pending break or hold with ``value``; False if nothing waits under that id.

        ``error`` (holds only) is raised in the held task instead of returning a value.  The
        context stays in ``/osh/recent`` as an ordinary (evictable) context whose
        ``__trc["released"]`` says why it ended.  Any thread (typically the shell's).
        """
        item = self.get(ctx_or_id)
        if error is not None and not isinstance(item, Hold):
            return False
        return item is not None and item.release(value, reason, error)

    def release_all(self, reason: str = "shutdown") -> int:
        """Release every pending break and hold (shutdown); returns how many.  Any thread."""
        with self._lock:
            items = list(self._pending.values())
        return sum(1 for item in items if item.release(None, reason))


class _Pending:
    """Common part of breaks and holds: one release, recorded on the context."""

    kind = ""

    def __init__(self, ctx: TraceContext, table: HoldTable) -> None:
        self.ctx = ctx
        self.table = table
        self.value: Any = None
        self.error: BaseException | None = None
        self.released: str | None = None
        self._once = threading.Lock()

    def release(
        self, value: Any = None, reason: str = "deleted", error: BaseException | None = None
    ) -> bool:
        """Let the waiter go on with ``value`` (a hold: or raise ``error`` in it); False if it
        was already released.

        Any thread.
        """
        with self._once:
            if self.released is not None:
                return False
            self.released = reason
        self.value = value
        self.error = error
        self.table._forget(self)
        if self.ctx.live is self:
            self.ctx.live = None
        self.ctx.trc["released"] = reason
        self._wake(value)
        self.table.events.emit(HoldReleased(self.ctx, reason))
        return True

    def _wake(self, value: Any) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        state = self.released or "pending"
        return f"<{type(self).__name__} {self.ctx.id} {state}>"


class Break(_Pending):
    """A thread blocked until resumed."""

    kind = "break"

    def __init__(self, ctx: TraceContext, table: HoldTable) -> None:
        super().__init__(ctx, table)
        self.event = threading.Event()

    def _wake(self, value: Any) -> None:
        self.event.set()

    def wait(self, timeout: float | None = None) -> Any:
        """Block the calling (traced) thread until released; return the resume value."""
        self.event.wait(timeout)
        return self.value


class Hold(_Pending):
    """An asyncio future the held task awaits; resolved on its own loop only."""

    kind = "hold"

    def __init__(self, ctx: TraceContext, loop: Any, table: HoldTable) -> None:
        super().__init__(ctx, table)
        self.loop = loop
        self.future = loop.create_future()
        self.future.add_done_callback(self._on_done)

    def _on_done(self, fut: Any) -> None:
        if fut.cancelled():  # the awaiting task was cancelled: nothing waits any more
            self.release(None, "cancelled")

    def _resolve(self) -> None:
        if self.future.done():
            return
        if self.error is not None:
            self.future.set_exception(self.error)
        else:
            self.future.set_result(self.value)

    def _wake(self, value: Any) -> None:
        if self.future.done():
            return
        try:
            door = self.table.eventloop_callback()
            if door is not None:
                door(self._resolve)
            else:
                self.loop.call_soon_threadsafe(self._resolve)
        except RuntimeError:  # loop closed: nobody can be waiting any more
            log.debug("loop of %s is closed", self.ctx.id)

    def __await__(self) -> Any:
        return self.future.__await__()


def _copy_outcome(task: Any, fut: concurrent.futures.Future) -> None:
    """Hand a finished task's outcome to the thread waiting in ``run_coroutine``."""
    if fut.done():
        return
    if task.cancelled():
        fut.set_exception(AwaitError("await: the task was cancelled"))
    elif task.exception() is not None:
        fut.set_exception(task.exception())
    else:
        fut.set_result(task.result())


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
