"""The trace registry of one runtime: specs by key, installed sites, and what is wrapped.

A :class:`Tracer` (``rt.tracer``) owns the registry lock, the specs (one per key), the sites
(installed wrappers) and the patches (rebound attributes).  Registry changes may come from any
thread (the shell's, usually; count exhaustion happens on the traced thread) and take the lock;
wrappers never take it -- they read ``site.state``, republished under the lock on every change.
Each change emits :class:`~otrace.events.TraceChanged`.

The shell holds the lock while it instruments (allocating: a collection may run a finalizer
there, which may wait for a lock a program thread holds), so nobody waits for it without
bound (:meth:`Tracer.locked`): a change waits at most :data:`WAIT`, then raises
:class:`~otrace.errors.TraceError` with nothing changed; a traced call whose trace's count ran
out waits :data:`SPENT_WAIT` to take the spent trace off, else leaves it registered,
inactive (it traces nothing; ``untrace`` or the next change of that key removes it).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from otrace.errors import TraceError
from otrace.events import EventBus, TraceChanged
from otrace.params import Params
from otrace.tracing.exec_hold import ExecHold

if TYPE_CHECKING:
    from otrace.recorder import Recorder
    from otrace.tracing.engine import Site, TraceSpec
    from otrace.tracing.install import Patch


#: how long a registry change waits for another thread holding the registry (seconds)
WAIT = 5.0
#: how long a traced call whose trace's count ran out waits to take the trace off (seconds)
SPENT_WAIT = 0.05


class Tracer:
    """Specs, sites and patches of one runtime (see the module docstring)."""

    def __init__(self, params: Params, recorder: Recorder, events: EventBus) -> None:
        self.params = params
        self.recorder = recorder
        self.events = events
        self.lock = threading.RLock()
        # exec_lock: typed code pauses recording on other threads, boundedly (never this lock)
        self.exec_hold = ExecHold(lambda text: recorder.announce(text))
        self.registry: dict[str, TraceSpec] = {}
        self.sites: set[Site] = set()
        # rebound attributes by (id(parent), attr), and the patches each trace key installed
        self.patches: dict[tuple[int, str], Patch] = {}
        self.owned: dict[str, list[Patch]] = {}
        # streams for the next pdb (None: the process's stdin/stdout); tests script pdb
        self.debugger_streams: tuple[IO[str] | None, IO[str] | None] = (None, None)
        params.add_listener(self._on_param)

    @contextlib.contextmanager
    def locked(self, wait: float | None = None) -> Iterator[None]:
        """Hold ``lock`` (re-entrant), waiting at most ``wait`` (default :data:`WAIT`) for
        another thread; TraceError if it is still held then.  Any thread."""
        wait = WAIT if wait is None else wait
        if not self.lock.acquire(timeout=wait):
            raise TraceError(
                f"The trace registry is busy (another thread has held it for over {wait:g}s); "
                "nothing changed, try again"
            )
        try:
            yield
        finally:
            self.lock.release()

    def _refresh_all(self, force: bool = False) -> None:
        for site in list(self.sites):
            site.refresh(force)

    def _on_param(self, name: str, old: Any, new: Any) -> None:
        try:
            if name == "trace_related" and bool(old) != bool(new):
                with self.locked():
                    self._refresh_all(force=True)
            elif name == "trace_active" and bool(old) != bool(new):
                with self.locked():
                    for site in list(self.sites):
                        site.publish()
        except TraceError:
            raise TraceError(
                f"{name} is set, but the trace registry was busy: traced functions see it "
                "from the next trace or untrace"
            ) from None

    def add_site(self, site: Site) -> None:
        with self.locked():
            self.sites.add(site)
            site.refresh()

    def drop_site(self, site: Site) -> None:
        with self.locked():
            self.sites.discard(site)
            site.armed = site.state = None

    def register(self, spec: TraceSpec) -> None:
        """Make ``spec`` the trace for its key (replacing any) and turn ``trace_active`` on."""
        spec.tracer = self
        with self.locked():
            old = self.registry.get(spec.key)
            if old is not None:
                old.active = False
            self.registry[spec.key] = spec
            try:
                self._refresh_all()
            except Exception as exc:  # e.g. a filter that does not compile: leave nothing behind
                if self.registry.get(spec.key) is spec:
                    del self.registry[spec.key]
                if old is not None:
                    old.active = True
                    self.registry[spec.key] = old
                spec.active = False
                self._refresh_all()
                raise TraceError(
                    f"Cannot trace {spec.display}: {type(exc).__name__}: {exc}"
                ) from None
            # switched under the lock: a count running out on a traced thread (unregister)
            # must not turn tracing off after this spec arrived
            if not self.params.trace_active:
                self.params.set("trace_active", True)
        self.events.emit(TraceChanged(spec.key, spec))

    def unregister(
        self, key: str, spec: TraceSpec | None = None, wait: float | None = None
    ) -> TraceSpec | None:
        """Remove the spec under ``key`` (only if it is ``spec``, when given).  Any thread;
        TraceError if the registry stays busy for ``wait`` (see :meth:`locked`)."""
        with self.locked(wait):
            current = self.registry.get(key)
            if current is None or (spec is not None and current is not spec):
                return None
            del self.registry[key]
            current.active = False
            self._refresh_all()
            if not self.registry and self.params.trace_active:
                self.params.set("trace_active", False)
        self.events.emit(TraceChanged(key, None))
        return current

    def retire(self, key: str, spec: TraceSpec) -> None:
        """Take off ``spec``, whose count ran out (the traced thread, which waits for the
        registry at most :data:`SPENT_WAIT`: past it the spec stays, inactive)."""
        try:
            self.unregister(key, spec, wait=SPENT_WAIT)
        except TraceError:
            pass  # it traces nothing (take() says no); untrace or the next change removes it

    def clear_registry(self) -> None:
        """Remove every spec (wrappers stay, as pass-through) and turn ``trace_active`` off."""
        with self.locked():
            keys = list(self.registry)
            for spec in self.registry.values():
                spec.active = False
            self.registry.clear()
            self._refresh_all()
            if self.params.trace_active:
                self.params.set("trace_active", False)
        for key in keys:
            self.events.emit(TraceChanged(key, None))

    def specs(self) -> list[TraceSpec]:
        with self.locked():
            return sorted(self.registry.values(), key=lambda s: s.key)

    def get_spec(self, key: str) -> TraceSpec | None:
        return self.registry.get(key)
