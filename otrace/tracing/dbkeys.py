"""Tracing database keys (``trace /osh/db/<path>``): the application's data layer reports
each access, and accesses to traced keys leave ``dbaccess`` contexts.

A *db interface* (``OShell(db_interface=...)``, reference §10.2) maps its keys to paths under
``/osh/db`` (``key_from_path``) and, given :func:`access_hook` through its
``set_access_hook``, calls it on every access: ``access_hook(op, key, entity_cache)`` where
``op`` is ``"get"``, ``"put"`` or ``"delete"`` and ``entity_cache.unpack()`` gives the entity
(a dict or an object).

A key trace filters by access type (``-c get``; ``-c put`` / ``-c delete``; ``-c modify`` =
put or delete; ``-c all`` or no ``-c`` = every access) or by the entity's fields
(``-c owner==ann,total>10``, the ``trace -c`` syntax, tested against the entity).  A
matching access makes a context named after the key (URL-unquoted, ``/`` -> ``_``) with the
operation as its label, holding the entity as ``:`` and the caller's stack in
``__trc["stack"]``, announced as ``<id> access <op> <key>``.  ``-a break`` then blocks the
accessing thread until ``resume`` (refused on an event loop's thread), ``-n`` counts as for
functions.

The key traces of a runtime live beside its :class:`~otrace.tracing.registry.Tracer` (the
functions take ``tracer``; default: the default runtime's).  :class:`OShell` gives its db
interface :func:`access_hook_for` its runtime's tracer.

Thread rules: an access hook runs on whatever thread accesses the data and never raises
into it; the other functions may be called from any thread.
"""

from __future__ import annotations

import sys
import threading
import urllib.parse
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from otrace import _default
from otrace.contexts import call_stack
from otrace.errors import TraceError
from otrace.log import get_logger
from otrace.tracing.condition_parse import parse_condition
from otrace.tracing.conditions import Predicate

if TYPE_CHECKING:
    from otrace.tracing.registry import Tracer

log = get_logger("tracing.db")

ACCESS = {
    "get": ("get",),
    "put": ("put",),
    "delete": ("delete",),
    "modify": ("put", "delete"),
    "all": ("get", "put", "delete"),
}


@dataclass
class KeyTrace:
    """One traced key: which accesses match, what to do, how many times."""

    key: str
    ops: tuple[str, ...]
    predicate: Predicate | None
    condition: str
    action: str | None
    count: int
    matches: int = 0
    last_error: str = ""
    _skip: int = field(default=0, repr=False)

    def render(self) -> str:
        parts = []
        if self.action:
            parts.append(f"-a {self.action}")
        if self.condition:
            parts.append(f"-c {self.condition}")
        if self.count:
            parts.append(f"-n {self.count}")
        return " ".join([*parts, self.key])


class _EntityView:
    """The entity's fields as a trace condition sees a call's arguments."""

    def __init__(self, entity: Any) -> None:
        if isinstance(entity, dict):
            self._fields = dict(entity)
        else:
            self._fields = dict(getattr(entity, "__dict__", {}))

    def value_of(self, name: str) -> Any:
        return self._fields[name]

    def arguments(self) -> dict[str, Any]:
        return self._fields

    def flat_arguments(self) -> list[tuple[str, Any]]:
        return list(self._fields.items())


class _KeyTable:
    """One tracer's key traces."""

    def __init__(self) -> None:
        # Re-entrant: the access hook runs on program threads, and a finalizer (or signal
        # handler) run inside it -- at the pop of a key's last access -- may access traced
        # data again.  The counts are updated before any call, so a nested access is harmless.
        self.lock = threading.RLock()
        self.keys: dict[str, KeyTrace] = {}


_tables: weakref.WeakKeyDictionary[Any, _KeyTable] = weakref.WeakKeyDictionary()
# Re-entrant: a tracer's table is made on first use, maybe by the access hook on a program
# thread; a finalizer run while it is made may access traced data (another first use).
_tables_lock = threading.RLock()


def _tracer(tracer: Tracer | None) -> Tracer:
    return tracer if tracer is not None else _default.get().tracer


def _table(tracer: Tracer) -> _KeyTable:
    table = _tables.get(tracer)
    if table is None:
        with _tables_lock:
            table = _tables.setdefault(tracer, _KeyTable())
    return table


def trace_key(
    key: str,
    condition: str = "",
    action: str | None = None,
    count: int = 0,
    tracer: Tracer | None = None,
) -> KeyTrace:
    """Trace accesses to ``key`` (see the module docstring); TraceError for a bad key."""
    if not key or ":" in key:
        raise TraceError(f"Invalid trace key: {key!r} (db keys may not contain ':')")
    if action not in (None, "break"):
        raise TraceError(f"Invalid action {action!r} for a db key: only break")
    word = (condition or "all").strip()
    if word in ACCESS:
        ops, predicate = ACCESS[word], None
    else:
        ops, predicate = ACCESS["all"], parse_condition(condition)
    spec = KeyTrace(key, ops, predicate, condition, action, count, _skip=max(-count, 0))
    tracer = _tracer(tracer)
    table = _table(tracer)
    with table.lock:
        table.keys[key] = spec
    if not tracer.params.trace_active:
        tracer.params.set("trace_active", True)
    return spec


def untrace_key(key: str, tracer: Tracer | None = None) -> None:
    table = _table(_tracer(tracer))
    with table.lock:
        if table.keys.pop(key, None) is None:
            raise TraceError(f"Invalid db key for untracing: {key}")


def untrace_all(tracer: Tracer | None = None) -> None:
    table = _table(_tracer(tracer))
    with table.lock:
        table.keys.clear()


def traced_keys(tracer: Tracer | None = None) -> list[KeyTrace]:
    table = _table(_tracer(tracer))
    with table.lock:
        return sorted(table.keys.values(), key=lambda k: k.key)


def context_name(key: str) -> str:
    return urllib.parse.unquote(key).replace("/", "_")


def access_hook_for(tracer: Tracer | None = None) -> Callable[[str, str, Any], None]:
    """The ``access_hook(op_type, entity_key, entity_cache)`` a db interface calls on every
    access, for ``tracer``'s key traces; cheap when the key is not traced."""
    tracer = _tracer(tracer)
    table = _table(tracer)

    def access_hook(op_type: str, entity_key: str, entity_cache: Any) -> None:
        if not table.keys or not tracer.params.trace_active:
            return
        spec = table.keys.get(entity_key)
        if spec is None or op_type not in spec.ops:
            return
        try:
            _access(tracer, table, spec, op_type, entity_key, entity_cache)
        except Exception:
            log.exception("tracing the %s of %s failed", op_type, entity_key)

    return access_hook


def access_hook(op_type: str, entity_key: str, entity_cache: Any) -> None:
    """The access hook of the default runtime (for db interfaces set up without a shell)."""
    access_hook_for()(op_type, entity_key, entity_cache)


def _access(
    tracer: Tracer, table: _KeyTable, spec: KeyTrace, op: str, key: str, entity_cache: Any
) -> None:
    entity = entity_cache.unpack() if hasattr(entity_cache, "unpack") else entity_cache
    if spec.predicate is not None:
        try:
            if not spec.predicate(_EntityView(entity)):
                return
        except Exception as exc:
            spec.last_error = f"{type(exc).__name__}: {exc}"
            return
    with table.lock:
        spec.matches += 1
        if spec._skip:
            spec._skip -= 1
            return
        if spec.count > 0 and spec.matches >= spec.count:
            table.keys.pop(key, None)  # this was the last one to trace
    frame = sys._getframe(2)  # the accessing code (past this and the hook)
    trc = {"stack": call_stack.capture_call_stack(frame), "op": op, "key": key}
    del frame
    recorder = tracer.recorder
    kind, note = recorder.resolve_kind("dbaccess", spec.action, False)
    say: list[Any] = [lambda c: f"{c.id} access {op} {key}"]
    if note:
        say.append(lambda c: f"{c.id}: break refused: this thread runs an event loop")
    _ctx, live = recorder.record(kind, context_name(key), op, {":": entity}, trc, say=say)
    if live is not None and hasattr(live, "wait"):
        live.wait()
