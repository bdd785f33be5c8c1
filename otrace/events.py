"""Typed events and the small synchronous bus that carries them.

The runtime owns one :class:`EventBus`.  The recorder, the store, the holds table, the trace
registry and the parameters emit events; the console, persistence and the web page subscribe.

Subscribers run synchronously on the emitting thread -- often a program thread or the event
loop -- so they must not block: hand work to a queue or a thread and return.  A subscriber that
raises is logged once (further failures of the same subscriber are counted, not logged) and
never raises into the emitter, which is usually the traced program.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from otrace.log import get_logger

log = get_logger("events")


@dataclass(frozen=True, slots=True)
class ContextRecorded:
    """A context was put in the store (by the recorder, ``unpickle``, a test ...)."""

    ctx: Any


@dataclass(frozen=True, slots=True)
class ContextRemoved:
    """A context left ``recent`` (deleted, resumed, evicted, or the store was cleared)."""

    ctx: Any


@dataclass(frozen=True, slots=True)
class HoldRegistered:
    """A break (``kind="break"``) or hold (``kind="hold"``) now waits on ``ctx``."""

    ctx: Any
    kind: str


@dataclass(frozen=True, slots=True)
class HoldReleased:
    """A break or hold was let go (``reason``: resumed, deleted, shutdown, cancelled ...)."""

    ctx: Any
    reason: str


@dataclass(frozen=True, slots=True)
class TraceChanged:
    """The trace under ``key`` was set (``spec`` is the new one) or removed (``spec`` None)."""

    key: str
    spec: Any


@dataclass(frozen=True, slots=True)
class ParamChanged:
    """A ``set`` parameter changed value."""

    name: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class Announcement:
    """A line for the operator about a trace event ("Cart.boom:ex-ZeroDivisionError:...")."""

    text: str


@dataclass(frozen=True, slots=True)
class DebuggerHandover:
    """pdb takes the terminal (``phase="enter"``) or gives it back (``"leave"``)."""

    phase: str


E = TypeVar("E")
Subscriber = Callable[[Any], None]
_NONE: tuple = ()  # a type with no subscribers (compared by identity)


class EventBus:
    """Synchronous publish/subscribe by event type.  Every method may be called from any thread.

    ``emit`` takes a snapshot of the subscribers under a short lock and calls them outside it,
    in subscription order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[type, tuple[Subscriber, ...]] = {}
        self._failed: dict[Any, int] = {}
        # read-only view for hot paths (``bus.subscribers.get(T)`` is ``has_subscribers``
        # without a call): each type's entry is a tuple, replaced whole, never changed
        self.subscribers: Mapping[type, tuple[Subscriber, ...]] = self._subs

    def subscribe(self, event_type: type[E], fn: Callable[[E], None]) -> None:
        """Call ``fn(event)`` for every ``event_type`` emitted from now on (must not block)."""
        while True:
            old = self._subs.get(event_type, _NONE)
            if self._swap(event_type, old, (*old, fn)):
                return

    def unsubscribe(self, event_type: type[E], fn: Callable[[E], None]) -> None:
        """Stop calling ``fn``; unknown subscribers are ignored."""
        while True:
            old = self._subs.get(event_type, _NONE)
            subs = list(old)
            if fn not in subs:  # (may run program code: a sink's __eq__; not under the lock)
                return
            subs.remove(fn)
            if self._swap(event_type, old, tuple(subs)):
                return

    def _swap(self, event_type: type, old: tuple, new: tuple) -> bool:
        """Install ``new`` if ``old`` is still the type's tuple (else the caller starts over).

        Nothing under the lock calls or allocates: no collection can start there, and no
        finalizer or signal handler run (that might subscribe on this thread) -- and no
        subscriber's ``__eq__`` runs there.
        """
        subs = self._subs
        with self._lock:
            if (subs[event_type] if event_type in subs else _NONE) is old:
                subs[event_type] = new
                return True
        return False

    def has_subscribers(self, event_type: type) -> bool:
        return bool(self._subs.get(event_type))

    def emit(self, event: Any) -> None:
        """Hand ``event`` to its type's subscribers.  Never raises."""
        for fn in self._subs.get(type(event), ()):
            try:
                fn(event)
            except Exception:
                count = self._failed.get(fn, 0)
                self._failed[fn] = count + 1
                if count == 0:
                    log.exception("event subscriber %r failed on %s", fn, type(event).__name__)

    def failures(self, fn: Callable[[Any], None]) -> int:
        """How often ``fn`` raised (for tests and diagnostics)."""
        return self._failed.get(fn, 0)
