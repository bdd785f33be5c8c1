"""Where trace contexts are kept: ``/osh/recent``, ``/osh/saved`` and the id index.

``recent`` and ``saved`` are nested dicts ``kind -> Name -> ctxid -> timestamp -> context``,
which the shell browses as they are.  ``recent`` keeps at most ``max_recent`` contexts per
kind (oldest evicted first); a break or hold still waiting (its ``live`` is set) is exempt,
since it stands for a thread or request -- it leaves only through ``resume`` or ``del``.  Once
released (resumed, cancelled, disconnected, ...) it is an ordinary context, kept with its
``__trc["released"]`` reason and evicted like any other.  ``saved`` never evicts.  ``all`` maps every trace id still kept anywhere to its context.

Thread safety: every method may be called from any thread; mutations take the store's lock.
Events are emitted in the calling thread, outside the lock (see otrace.events).  What a
program thread does here (:meth:`ContextStore.add`, :meth:`~ContextStore.save` of a recorded
context, :meth:`~ContextStore.settled` when its hold is released) waits for the lock at most
:data:`WAIT`: the shell lists and saves under it, allocating, and a finalizer run there by a
collection may wait for a lock that very program thread holds.  Past the bound the context
is dropped (counted in ``dropped``, said once) -- see ``docs/architecture.rst``, "Locks and
finalizers".
"""

from __future__ import annotations

import fnmatch
import operator
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from otrace.contexts.record import KINDS, TraceContext
from otrace.contexts.record import file_fast as _c_file
from otrace.events import ContextRecorded, ContextRemoved, EventBus
from otrace.log import get_logger
from otrace.params import Params

log = get_logger("contexts")

#: how long a program thread waits for the store's lock held by another thread (seconds):
#: the shell holds it for a copy of references, at most milliseconds; past this a context is
#: dropped rather than the program thread wedged (see the module docstring)
WAIT = 0.25


class Shelf(dict):
    """One directory level of ``recent``/``saved``: a dict otrace builds (string keys only).

    Its own type lets the shell trust it (safe mode then reads it directly instead of
    checking 100,000 keys for program-defined types) and know its entries come in the order
    they were made: a listing cut at ``ls_limit`` shows the newest.
    """

    __slots__ = ()
    chronological = True


def _put(tree: dict, ctx: TraceContext) -> None:
    level = tree
    for key in (ctx.kind, ctx.name, ctx.ctxid):
        sub = level.get(key)
        if sub is None:
            sub = level[key] = Shelf()
        level = sub
    level[ctx.timestamp] = ctx


def _pop(tree: dict, ctx: TraceContext) -> bool:
    """Remove ``ctx`` from ``tree``, pruning directories left empty."""
    kind, name, ctxid, ts = ctx.kind, ctx.name, ctx.ctxid, ctx.timestamp
    try:
        level3 = tree[kind][name][ctxid]
        if level3.get(ts) is not ctx:
            return False
        del level3[ts]
        if not level3:
            del tree[kind][name][ctxid]
            if not tree[kind][name]:
                del tree[kind][name]
                if not tree[kind]:
                    del tree[kind]
    except KeyError:
        return False
    return True


def _line(lines: dict[str, OrderedDict[str, TraceContext]], kind: str) -> OrderedDict:
    """``lines[kind]``, made if missing (``setdefault`` would make a dict every call)."""
    line = lines.get(kind)
    if line is None:
        line = lines[kind] = OrderedDict()
    return line


def _glob(part: str) -> bool:
    return any(c in part for c in "*?[")


_created = operator.attrgetter("created")


def _oldest_first(found: list[TraceContext], newest: int | None) -> list[TraceContext]:
    found.sort(key=_created)  # (runs in time order: timsort merges them, cheaper than a heap)
    return found if newest is None or len(found) <= newest else found[len(found) - newest :]


class ContextStore:
    """A runtime's trace contexts (``rt.store``; the shell browses it as /osh/recent, /osh/saved).

    Adding emits :class:`~otrace.events.ContextRecorded`, removing (or evicting)
    :class:`~otrace.events.ContextRemoved` on ``events``.  Any thread.
    """

    def __init__(self, params: Params | None = None, events: EventBus | None = None) -> None:
        self.params = params if params is not None else Params()
        self.events = events if events is not None else EventBus()
        # (re-entrant: a collection while it is held may run a program's finalizer, which
        # may record a context on this thread)
        self._lock = threading.RLock()
        self.recent: dict[str, dict] = Shelf()
        self.saved: dict[str, dict] = Shelf()
        self.all: dict[str, TraceContext] = {}
        # per kind, oldest first: the evictable contexts (a released break or hold joins at
        # the end), and those whose break or hold still waits (never evicted, never scanned)
        self._order: dict[str, OrderedDict[str, TraceContext]] = {k: OrderedDict() for k in KINDS}
        self._waiting: dict[str, OrderedDict[str, TraceContext]] = {k: OrderedDict() for k in KINDS}
        self._saved_ids: set[str] = set()
        self._newest: TraceContext | None = None
        # contexts a program thread gave up filing after WAIT (see _drop); no lock: a count
        # off by one under a race is harmless, a lock here would be one more to wait for
        self.dropped = 0
        self._said = False

    # -- adding ------------------------------------------------------------------------
    def add(self, ctx: TraceContext) -> None:
        """Put a new context in ``recent`` (evicting the oldest of its kind if needed)."""
        kind = ctx.kind
        lock = self._lock
        # (a try first: no deadline is worked out unless another thread holds it)
        if not lock.acquire(False) and not lock.acquire(True, WAIT):
            self._drop(ctx, "recorded")
            return
        try:
            # (first: a finalizer run while it is filed may add a newer one, which must stay
            # the newest)
            self._newest = ctx
            filed: Any = (
                _c_file(
                    self.recent,
                    self.all,
                    self._order.get(kind),
                    ctx,
                    self.params.max_recent,
                    self._saved_ids,
                    Shelf,
                )
                if _c_file is not None
                else False
            )
            if filed is False:  # (not the usual case for C, or no C)
                filed = self._file(ctx)
            if filed is True:  # more than one to evict (max_recent was lowered)
                old, evicted = None, self._evict(kind)
            else:
                old, evicted = filed, None
                if old is ctx:  # (max_recent 0: the newest went at once)
                    self._newest = self._latest()
        finally:
            lock.release()
        subscribers = self.events.subscribers
        if subscribers.get(ContextRecorded):
            self.events.emit(ContextRecorded(ctx))
        if old is not None:
            if old.id not in self._saved_ids:
                if subscribers.get(ContextRemoved):
                    self.events.emit(ContextRemoved(old))
                if "__up" in old:  # (a call's context has no chain to unlink)
                    old.unlink()
        elif evicted:
            self._evicted(evicted)

    def _file(self, ctx: TraceContext) -> TraceContext | bool | None:
        """Put ``ctx`` in ``recent``, ``all`` and its kind's line (lock held).  Returns the
        context evicted for it, None, or True when more than one must go (``_evict``).
        ``otrace._trace_ids.file`` does the same for the usual case."""
        kind = ctx.kind
        try:  # the usual: its directory is there
            self.recent[kind][ctx.name][ctx.ctxid][ctx.timestamp] = ctx
        except KeyError:
            _put(self.recent, ctx)
        self.all[ctx.id] = ctx
        order = self._order.get(kind) or _line(self._order, kind)
        if ctx.live is None:
            order[ctx.id] = ctx
        else:  # waiting: joins the evictable ones when released (settled())
            _line(self._waiting, kind)[ctx.id] = ctx
        excess = len(order) - self.params.max_recent
        if excess != 1:
            return excess > 1 or None
        old = order.popitem(last=False)[1]  # the usual once full: one added, the oldest goes
        _pop(self.recent, old)
        if old.id not in self._saved_ids:
            self.all.pop(old.id, None)
        return old

    def _take(self) -> bool:
        """Take the lock, waiting at most WAIT for another thread (program threads)."""
        lock = self._lock
        return lock.acquire(False) or lock.acquire(True, WAIT)

    def _drop(self, ctx: TraceContext, what: str) -> None:
        """A context not filed (another thread held the lock past WAIT): counted, said once,
        and a new one's break or hold released -- nothing may wait on a context nobody can
        see.  The thread that called, lock not held."""
        self.dropped += 1
        live = ctx.live
        if live is not None and what == "recorded":
            try:
                live.release()
            except Exception:
                log.exception("releasing %s failed", ctx.id)
        if not self._said:
            self._said = True
            log.warning(
                "a context %s was dropped: another thread held the store for over %g s "
                "(counted in the store's dropped; said once)",
                what,
                WAIT,
            )

    def _evicted(self, evicted: list[TraceContext]) -> None:
        """Tell of contexts ``_evict`` dropped, and cut their chains (lock not held)."""
        events = self.events
        tell = events.has_subscribers(ContextRemoved)
        saved = self._saved_ids
        for old in evicted:
            if old.id not in saved:
                if tell:
                    events.emit(ContextRemoved(old))
                if "__up" in old:  # (a call's context has no chain to unlink)
                    old.unlink()

    def _evict(self, kind: str) -> list[TraceContext]:
        """Drop the oldest evictable contexts of one kind beyond ``max_recent`` (lock held).

        Waiting breaks and holds are kept apart, neither evicted nor counted: at most
        ``max_recent`` others stay beside any number still waiting, and 10,000 waiting
        holds cost an add no scan.  O(contexts evicted).
        """
        order = _line(self._order, kind)
        excess = len(order) - self.params.max_recent
        if excess <= 0:
            return []
        if excess == 1:  # the usual: one added, one goes
            evicted = [order.popitem(last=False)[1]]
        else:
            evicted = [order.popitem(last=False)[1] for _ in range(excess)]
        recent, saved, every = self.recent, self._saved_ids, self.all
        for old in evicted:
            _pop(recent, old)
            if old.id not in saved:
                every.pop(old.id, None)
        newest = self._newest
        if newest is not None and newest.id not in every:
            self._newest = self._latest()
        return evicted

    def settled(self, ctxs: list[TraceContext]) -> None:
        """Their breaks or holds were released: they become evictable, as the newest of
        their kind (so the one just resumed stays longest), and the excess goes.

        Called by the holds table after clearing ``live``; any thread.
        """
        evicted: list[TraceContext] = []
        if not self._take():  # (they stay kept, as if still waiting, until removed)
            return
        try:
            kinds = set()
            for ctx in ctxs:
                waiting = self._waiting.get(ctx.kind)
                if waiting is not None and waiting.pop(ctx.id, None) is not None:
                    _line(self._order, ctx.kind)[ctx.id] = ctx
                    kinds.add(ctx.kind)
            for kind in kinds:
                evicted.extend(self._evict(kind))
        finally:
            self._lock.release()
        self._evicted(evicted)

    def save(self, ctx: TraceContext) -> bool:
        """Copy a context into ``saved`` (it then outlives eviction); False if it could not
        (another thread held the store past WAIT: counted in ``dropped``)."""
        if not self._take():
            self._drop(ctx, "saved")
            return False
        try:
            _put(self.saved, ctx)
            self._saved_ids.add(ctx.id)
            self.all[ctx.id] = ctx
        finally:
            self._lock.release()
        return True

    # -- removing ----------------------------------------------------------------------
    def remove(self, ctx: TraceContext, *, keep_saved: bool = False) -> None:
        """Drop a context from ``recent`` (and ``saved`` unless ``keep_saved``).

        A pending break or hold is released first, so nothing waits on a context that is gone.
        """
        live = ctx.live
        if live is not None:
            try:
                live.release()
            except Exception:
                log.exception("releasing %s failed", ctx.id)
        with self._lock:
            _pop(self.recent, ctx)
            self._order.get(ctx.kind, {}).pop(ctx.id, None)  # type: ignore[call-overload]
            self._waiting.get(ctx.kind, {}).pop(ctx.id, None)  # type: ignore[call-overload]
            if not keep_saved and ctx.id in self._saved_ids:
                _pop(self.saved, ctx)
                self._saved_ids.discard(ctx.id)
            if ctx.id not in self._saved_ids:
                self.all.pop(ctx.id, None)
            if self._newest is ctx:
                self._newest = self._latest()
            gone = ctx.id not in self.all
        self.events.emit(ContextRemoved(ctx))
        if gone:
            ctx.unlink()

    def clear(self) -> None:
        """Forget everything (releasing whatever waits); used by tests and shutdown."""
        for ctx in list(self.all.values()):
            self.remove(ctx)
        with self._lock:
            self.recent.clear()
            self.saved.clear()
            self.all.clear()
            for order in (*self._order.values(), *self._waiting.values()):
                order.clear()
            self._saved_ids.clear()
            self._newest = None

    # -- reading -----------------------------------------------------------------------
    @property
    def newest(self) -> TraceContext | None:
        """The most recent context still kept in ``recent`` (what ``~~`` points to)."""
        return self._newest

    def get(self, trace_id: str) -> TraceContext | None:
        return self.all.get(trace_id)

    def find(self, patterns: Iterable[str]) -> list[TraceContext]:
        """Contexts whose id matches any of the glob ``patterns``, oldest first."""
        with self._lock:
            ctxs = list(self.all.values())
        hits = [c for c in ctxs if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]
        return sorted(hits, key=lambda c: c.created)

    def under(
        self, root: str, prefix: tuple[str, ...] = (), newest: int | None = None
    ) -> tuple[list[TraceContext], int]:
        """The contexts of ``root`` (``"recent"`` or ``"saved"``) below ``prefix`` -- the
        first parts of their path (kind, Name, ctxid, timestamp), each a name or a glob --
        oldest first, only the ``newest`` ones if given; and how many there are in all.
        Reads no context's values.  Any thread.
        """
        with self._lock:  # (a copy of references: the lock is held for microseconds)
            if root == "recent":
                kinds = list(self._order) if not prefix or _glob(prefix[0]) else [prefix[0]]
                lines = (self._order, self._waiting)  # released holds sit out of time order
                found = [c for k in kinds for line in lines for c in line.get(k, {}).values()]
            else:
                found = [self.all[i] for i in self._saved_ids if i in self.all]
        if len(prefix) > (1 if root == "recent" else 0):
            size = len(prefix)
            if any(map(_glob, prefix)):
                found = [c for c in found if all(map(fnmatch.fnmatchcase, c.path[:size], prefix))]
            else:
                found = [c for c in found if c.path[:size] == prefix]
        return _oldest_first(found, newest), len(found)

    def is_saved(self, ctx: TraceContext) -> bool:
        return ctx.id in self._saved_ids

    def _latest(self) -> TraceContext | None:
        """The newest kept context (lock held).  Released holds sit out of creation order at
        the end of their line, so this looks at all: only when the newest one goes."""
        best: TraceContext | None = None
        for line in (*self._order.values(), *self._waiting.values()):
            if line:
                last = max(line.values(), key=lambda c: c.created)
                if best is None or last.created >= best.created:
                    best = last
        return best
