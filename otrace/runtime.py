"""The runtime: every piece of process-wide otrace state, composed in one place.

A :class:`Runtime` owns the parameters, the context store, the holds table (with the door to
the event loop), the trace registry, the live patches, the persistence hook, the recorder and
the event bus -- plus the few slots the integrations fill in (the traceback page's server, the
Tornado loop, the embedded shell).  Sessions, commands, consoles and web pieces receive a
runtime (or take their session's); program-facing functions of lower layers use the default
runtime, :func:`default`.  Tests build their own (:func:`use`).

See docs/architecture.rst for the parts, who owns what, threads and the events.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from otrace import _default, forking
from otrace.contexts.sqlite import PersistenceHook
from otrace.contexts.store import ContextStore
from otrace.events import Announcement, EventBus
from otrace.holds import HoldTable
from otrace.logparams import LogParams
from otrace.params import Params
from otrace.recorder import Recorder
from otrace.requests import HoldRules, RequestTable
from otrace.tracing.patching import PatchTable
from otrace.tracing.registry import Tracer


class _Sink:
    """Adapts ``sink(text)`` to an ``Announcement`` subscriber (equal for the same sink)."""

    __slots__ = ("sink",)

    def __init__(self, sink: Callable[[str], None]) -> None:
        self.sink = sink

    def __call__(self, event: Announcement) -> None:
        self.sink(event.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Sink) and other.sink == self.sink

    def __hash__(self) -> int:
        return hash(self.sink)


class Runtime:
    """One otrace instance's state (see the module docstring).

    The attributes are fixed at construction; the objects they hold say which thread may call
    what.  ``traceback_server``, ``loop``, ``loop_thread`` and ``shell`` are slots set by the
    traceback page, the Tornado integration and :class:`otrace.OShell` (None when unused).
    """

    def __init__(self) -> None:
        self.events = EventBus()
        self.params = Params(events=self.events)
        self.store = ContextStore(self.params, self.events)
        self.holds = HoldTable(self.store, self.events)
        self.recorder = Recorder(self.store, self.holds, self.params, self.events)
        self.tracer = Tracer(self.params, self.recorder, self.events)
        self.patches = PatchTable(self.holds)
        self.persistence = PersistenceHook()
        self.logparams = LogParams()
        self.requests = RequestTable(self.params)  # filled by a server integration
        self.hold_rules = HoldRules(self.recorder.announce)  # hold -c
        # slots filled by the integrations
        self.traceback_server: Any = None
        self.loop: Any = None
        self.loop_thread: int | None = None
        self.shell: Any = None
        forking.register(self)  # no lock of this runtime is inherited held by a forked child

    # -- announcements ------------------------------------------------------------------------
    def announce(self, text: str, level: int = logging.INFO) -> None:
        """Tell the operator (``Announcement``; the ``otrace.announce`` logger at ``level``
        while nobody listens).  Any thread."""
        self.recorder.announce(text, level=level)

    def add_sink(self, sink: Callable[[str], None]) -> None:
        """Subscribe ``sink(text)`` to announcements (must not block).  Any thread."""
        self.events.subscribe(Announcement, _Sink(sink))

    def remove_sink(self, sink: Callable[[str], None]) -> None:
        self.events.unsubscribe(Announcement, _Sink(sink))

    # -- shutdown -----------------------------------------------------------------------------
    def close(self) -> None:
        """Release what waits, remove wrappers and patches (on this thread), close persistence
        and empty the store.  For tests and process shutdown, when the program is done."""
        from otrace.tracing.api import unwrap_all
        from otrace.tracing.patching import unpatch_all

        self.hold_rules.remove()
        self.holds.release_all("shutdown")
        self.holds.set_eventloop_callback(None)  # the loop may be gone: undo patches here
        unwrap_all(self.tracer)
        try:
            unpatch_all(table=self.patches)
        except Exception:
            pass
        self.persistence.uninstall()
        self.store.clear()


def default() -> Runtime:
    """The process's default runtime (built on first use).  Any thread."""
    return _default.get()


@contextlib.contextmanager
def use(rt: Runtime | None = None) -> Iterator[Runtime]:
    """Make ``rt`` (a new runtime if None) the default inside the block; for tests."""
    rt = rt if rt is not None else Runtime()
    old = _default.replace(rt)
    try:
        yield rt
    finally:
        _default.replace(old)


_default.set_factory(Runtime)
