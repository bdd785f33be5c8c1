"""The pending breaks and holds of one runtime: :class:`HoldTable`, :class:`Break`, :class:`Hold`.

One lock (the table's) guards the table, the owner index and every item's release, so a
break or hold is released exactly once, however many threads try.  Releasing many at once
(:meth:`HoldTable.release_all`) takes the lock once and wakes the holds of each event loop
with one callback on that loop, not one per hold: resuming 10,000 held requests is one trip
through the loop's door, not 10,000 (each of which writes to the loop's wake-up pipe).
When more than :data:`SETTLE_LATER` holds of one loop are released, what no answer waits for
-- making their contexts evictable and evicting the excess, :class:`HoldReleased` -- runs
on that loop after their handlers (a loop callback queued behind the tasks woken); fewer
are settled by the releasing thread at once, as one is.

The shell's threads hold the lock across allocations (claiming, listing), where a collection
may run a finalizer that waits for a lock a program thread holds; so what a program thread
or the loop does here waits for it at most :data:`WAIT`: a new break or hold is then
refused -- released at once (``__trc["released"]`` says so), its thread goes on -- and a
release or a look-up finds nothing (see docs/architecture.rst, "Locks and finalizers").  The
whole-table operations (listing, ``resume *``, the release at shutdown) wait longer,
:data:`SHELL_WAIT`, but bounded too: a program thread wedged under the lock (a finalizer
waiting for a lock that the waiting thread holds) must not hang the console, and is freed
when that thread gives up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from otrace.contexts.record import TraceContext
from otrace.errors import OTraceError
from otrace.events import HoldRegistered, HoldReleased
from otrace.holds import door as _door
from otrace.holds.door import LoopDoor, running_loop
from otrace.log import get_logger

if TYPE_CHECKING:
    from otrace.contexts.store import ContextStore
    from otrace.events import EventBus

log = get_logger("holds")

#: More holds of one loop released at once are settled on that loop after they ran.
SETTLE_LATER = 256
#: how long a program thread (or the loop) waits for the table's lock held by another (s)
WAIT = 0.25
#: how long listing, ``resume *`` and the release at shutdown wait for the table's lock (s)
SHELL_WAIT = 5.0
#: why a break or hold that could not wait for the table was let go at once
REFUSED = "refused: the holds table was busy"


class TableBusy(OTraceError):
    """The holds table stayed busy (another thread held its lock) past :data:`SHELL_WAIT`."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what}: the holds table stayed busy for {SHELL_WAIT:g}s (another thread holds "
            "it); nothing was done, try again"
        )


class HoldTable:
    """The pending breaks and holds of one runtime, and its door to the event loop."""

    def __init__(self, store: ContextStore, events: EventBus) -> None:
        self.store = store
        self.events = events
        # Re-entrant: program code may call in while this thread holds it -- a finalizer that
        # a collection runs inside (or a signal handler) may resume, release or list holds
        # (otrace.holds).  Each item's claim is complete before any point where that can
        # happen (the checks that follow allow for it), so a nested release is harmless.
        self._lock = threading.RLock()
        self._pending: dict[str, Break | Hold] = {}
        # id(the context's ``self``) -> its waiting items: a Tornado handler whose client
        # disconnects finds its holds without scanning (and sorting) every pending one
        self._by_owner: dict[int, list[Break | Hold]] = {}
        self._breaks = 0  # how many of the pending are breaks
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

        Through ``callback`` (default: the door set with :meth:`set_eventloop_callback`); see
        :func:`otrace.holds.door.call_on_loop`.  For other threads (the shell's).
        """
        return _door.call_on_loop(callback if callback is not None else self._door, func, timeout)

    def run_coroutine(self, coro: Any, timeout: float, loop: Any = None) -> Any:
        """Run ``coro`` as a task on the program's event loop and wait for its result.

        ``loop`` (an asyncio loop) is used when given (a held task's own loop), else the
        door; see :func:`otrace.holds.door.run_coroutine`.  For other threads (the shell's).
        """
        door = loop.call_soon_threadsafe if loop is not None else self._door
        return _door.run_coroutine(door, coro, timeout)

    def can_block(self) -> bool:
        """True if the current thread may block on a break (no running loop, not exempt)."""
        return running_loop() is None and threading.get_ident() not in self.no_break_threads

    # -- the table -------------------------------------------------------------------------
    def _register(self, item: Break | Hold) -> None:
        owner = item.ctx.get("self")
        key, oid = item.ctx.id, id(owner) if owner is not None else None
        alone = [item]
        if not self._take():
            self._refuse(item)
            return
        try:  # no call before the item is in both places (see _lock)
            self._pending[key] = item
            self._breaks += item.kind == "break"
            if oid is not None:
                item.owner = oid
                mine = self._by_owner[oid] if oid in self._by_owner else None
                if mine is None:
                    self._by_owner[oid] = alone
                else:
                    mine.append(item)
        finally:
            self._lock.release()
        item.ctx.live = item
        self.events.emit(HoldRegistered(item.ctx, item.kind))

    def _take(self, wait: float = WAIT) -> bool:
        """Take the lock, waiting at most ``wait`` for another thread (see the module's text)."""
        lock = self._lock
        return lock.acquire(False) or lock.acquire(True, wait)

    def _pending_now(self) -> dict[str, Break | Hold] | None:
        """A copy of the pending items by id, waiting at most SHELL_WAIT for the lock (the
        whole-table operations'); None if the table stayed busy.  Any thread."""
        if not self._take(SHELL_WAIT):
            return None
        try:
            return dict(self._pending)  # (otrace's own dict of otrace's objects)
        finally:
            self._lock.release()

    def _refuse(self, item: Break | Hold) -> None:
        """Let a new break or hold go at once, unregistered (the table stayed busy past WAIT):
        its thread goes on; the context is an ordinary one.  Its own thread (the loop's, for
        a hold), lock not held."""
        item.released = REFUSED
        item.ctx.trc["released"] = REFUSED
        if isinstance(item, Hold):
            item._resolve()
        else:
            item.event.set()
        log.warning("%s %s: %s", item.kind, item.ctx.id, REFUSED)

    def _claim(
        self, item: Break | Hold, value: Any, reason: str, error: BaseException | None
    ) -> bool:
        """Mark ``item`` released and drop it from the table; False if it was already.

        The table's lock is held by the caller.
        """
        if item.released is not None:
            return False
        item.released, item.value, item.error = reason, value, error
        if self._pending.get(item.ctx.id) is item:
            del self._pending[item.ctx.id]
            self._breaks -= item.kind == "break"
        if item.owner is not None:
            mine = self._by_owner.get(item.owner)
            if mine is not None:
                if item in mine:  # items compare by identity
                    mine.remove(item)
                # (a finalizer run inside remove() may have released the owner's last too)
                if not mine and self._by_owner.get(item.owner) is mine:
                    self._by_owner.pop(item.owner, None)
        return True

    def _release(
        self,
        items: Iterable[Break | Hold],
        value: Any,
        reason: str,
        error: BaseException | None,
        wait: float = WAIT,
    ) -> list[Break | Hold]:
        """Release ``items`` (those not released yet); returns those it released.  Any
        thread; nothing if the table stays busy past ``wait``."""
        if not self._take(wait):
            return []
        try:
            done = [item for item in items if self._claim(item, value, reason, error)]
        finally:
            self._lock.release()
        held: list[Hold] = []
        for item in done:
            ctx = item.ctx
            if ctx.live is item:
                ctx.live = None
            ctx.trc["released"] = reason
            if isinstance(item, Hold):
                held.append(item)
            else:
                item.event.set()
        by_loop: dict[Any, list[Hold]] = {}
        for item in held:
            by_loop.setdefault(item.loop, []).append(item)
        many = {loop for loop, items in by_loop.items() if len(items) > SETTLE_LATER}
        # settled before they are woken, as one hold is; many of one loop: see SETTLE_LATER
        self._settle([i for i in done if not isinstance(i, Hold) or i.loop not in many])
        for loop, items in by_loop.items():
            self._wake(loop, items, loop in many)
        return done

    def _settle(self, items: list[Any]) -> None:
        """Released ``items`` become evictable contexts; their events go out.  Any thread."""
        if items:
            self.store.settled([item.ctx for item in items])
            emit = self.events.emit
            for item in items:
                emit(HoldReleased(item.ctx, item.released or ""))

    def _wake(self, loop: Any, items: list[Hold], settle: bool) -> None:
        """Resolve the futures of ``items`` with one callback on their ``loop``; with
        ``settle``, that callback also settles them after their handlers ran."""
        batch = _Wake(loop, items, self._settle if settle else None)
        try:
            if loop is running_loop():  # on that loop's thread: no trip through the door
                batch.run()
            elif self._door is not None:
                self._door(batch.run)
            else:
                loop.call_soon_threadsafe(batch.run)
        except RuntimeError:  # loop closed: nobody can be waiting any more
            log.debug("loop of %d holds is closed", len(items))
            if settle:
                self._settle(items)

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
        if not self._take():  # (busy past WAIT: as if nothing waited)
            return None
        try:
            return self._pending.get(trace_id)
        finally:
            self._lock.release()

    def __len__(self) -> int:
        """How many breaks and holds wait (no sorting, no copy).  Any thread."""
        return len(self._pending)

    def breaks_waiting(self) -> bool:
        """True while some thread waits on a break (the prompt's ``BRK:``): no sort, no copy
        of 10,000 waiting holds for every prompt.  Any thread."""
        return self._breaks > 0

    def pending(self) -> list[TraceContext]:
        """Contexts whose break or hold still waits, oldest first.  Any thread; TableBusy
        if the table stays busy past SHELL_WAIT."""
        pending = self._pending_now()
        if pending is None:
            raise TableBusy("listing the holds")
        return sorted((i.ctx for i in pending.values()), key=lambda c: c.created)

    def held_by(self, owner: object) -> list[TraceContext]:
        """Contexts still waiting whose captured ``self`` is ``owner``, oldest first.

        Looked up in an index, so a request handler finds its own holds in constant time
        however many others wait.  Any thread (the loop, when a client goes); none if the
        table stays busy past WAIT.
        """
        if not self._take():
            return []
        try:
            items = list(self._by_owner.get(id(owner), ()))
        finally:
            self._lock.release()
        return [i.ctx for i in items if i.ctx.get("self") is owner]

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
        """Release every pending break and hold; returns how many.  Any thread.

        The holds of one loop are resolved by one callback on it (see the module's text).
        None are (0, and a warning logged) if the table stays busy past SHELL_WAIT: this
        runs at shutdown, which must not hang.
        """
        pending = self._pending_now()
        if pending is None:
            log.warning("release_all(%r): the holds table stayed busy; nothing released", reason)
            return 0
        return len(self._release(pending.values(), None, reason, None, SHELL_WAIT))

    def resume_many(
        self,
        ctxs: Iterable[TraceContext],
        value: Any = None,
        *,
        reason: str = "resumed",
        error: BaseException | None = None,
    ) -> list[TraceContext]:
        """:meth:`resume` for many contexts at once (``resume *``): one callback per loop
        wakes all their holds.  Returns the contexts released (``error``: holds only).
        Any thread; TableBusy if the table stays busy past SHELL_WAIT (nothing released)."""
        pending = self._pending_now()
        if pending is None:
            raise TableBusy("resume")
        # (looked up in the copy: one released meanwhile is skipped by _release's claim)
        found = [pending.get(ctx.id) for ctx in ctxs]
        items = [i for i in found if i is not None and (error is None or isinstance(i, Hold))]
        return [item.ctx for item in self._release(items, value, reason, error, SHELL_WAIT)]


class _Wake:
    """One loop callback resolving many holds' futures, then -- given ``settle`` -- queueing
    their settling behind the tasks it woke.  ``loop``: for the Tornado bridge, which sends
    a callback to the loop its ``__self__.loop`` names.  :meth:`run` runs on that loop."""

    __slots__ = ("items", "loop", "settle")

    def __init__(
        self, loop: Any, items: list[Hold], settle: Callable[[list[Any]], None] | None = None
    ) -> None:
        self.loop = loop
        self.items = items
        self.settle = settle

    def run(self) -> None:
        for item in self.items:
            item._resolve()
        if self.settle is not None:
            try:
                self.loop.call_soon(self.settle, self.items)
            except RuntimeError:  # the loop is closing: nobody waits any more
                self.settle(self.items)


class _Pending:
    """Common part of breaks and holds: one release, recorded on the context."""

    __slots__ = ("ctx", "error", "owner", "released", "table", "value")
    kind = ""

    def __init__(self, ctx: TraceContext, table: HoldTable) -> None:
        self.ctx = ctx
        self.table = table
        self.value: Any = None
        self.error: BaseException | None = None
        self.released: str | None = None
        self.owner: int | None = None

    def release(
        self, value: Any = None, reason: str = "deleted", error: BaseException | None = None
    ) -> bool:
        """Let the waiter go on with ``value`` (a hold: or raise ``error`` in it); False if it
        was already released.

        Any thread.
        """
        return len(self.table._release((self,), value, reason, error)) == 1  # type: ignore[arg-type]

    def __repr__(self) -> str:
        state = self.released or "pending"
        return f"<{type(self).__name__} {self.ctx.id} {state}>"


class Break(_Pending):
    """A thread blocked until resumed."""

    __slots__ = ("event",)
    kind = "break"

    def __init__(self, ctx: TraceContext, table: HoldTable) -> None:
        super().__init__(ctx, table)
        self.event = threading.Event()

    def wait(self, timeout: float | None = None) -> Any:
        """Block the calling (traced) thread until released; return the resume value."""
        self.event.wait(timeout)
        return self.value


class Hold(_Pending):
    """An asyncio future the held task awaits; resolved on its own loop only."""

    __slots__ = ("future", "loop")
    kind = "hold"

    def __init__(self, ctx: TraceContext, loop: Any, table: HoldTable) -> None:
        super().__init__(ctx, table)
        self.loop = loop
        self.future = loop.create_future()

    def _resolve(self) -> None:
        """Complete the future with the release's value or error; on its loop only."""
        if self.future.done():
            return
        if self.error is not None:
            self.future.set_exception(self.error)
        else:
            self.future.set_result(self.value)

    def __await__(self) -> Any:
        # A cancelled awaiting task cancels the future and raises CancelledError here: then
        # nothing waits any more.  (Caught here rather than with a done callback on the
        # future, which would cost every resume a second loop callback.)
        try:
            return (yield from self.future.__await__())
        except BaseException:
            if self.future.cancelled():
                self.release(None, "cancelled")
            raise
