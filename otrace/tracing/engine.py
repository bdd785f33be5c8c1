"""The tracing engine at call time: trace specs, the registry, and what a traced call does.

A :class:`TraceSpec` is one ``trace`` command: a registry key (``Cart.add_item``,
``Cart.`` for a whole class, ``shop.*`` for a whole module, ``*`` for every wrapped
function), a condition, an action and a count.  A :class:`Site` is one installed wrapper
around one function; it knows its registry keys, most specific first (``C.m``, ``.m``,
``C.``, ``module.*``, ``*``), and holds ``state`` = ``(spec, quick)`` -- the spec that
currently applies and a fast pre-filter compiled from its condition for that function's
signature (None for an exceptions-only trace) -- recomputed whenever the registry changes.  So a wrapped call reads one
attribute, one parameter and (for conditions) calls one small filter before the real call;
arguments are bound with the function's cached :class:`inspect.Signature` only when a
condition needs names the filter cannot index, or a context is made.

Per-call state lives in a :class:`Call` created by the call itself (threads and recursion
never share it).

Thread rules: registry changes (:func:`register`, :func:`unregister`, ...) take the
registry lock and may come from any thread (the shell's, usually; count exhaustion happens on
the traced thread).  :func:`on_call`, :func:`on_return` and :func:`on_exception` run on the
traced thread and never raise into the program (except that breaks block, by design).
"""

from __future__ import annotations

import inspect
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from otrace import holds
from otrace.contexts import capture
from otrace.contexts.record import TraceContext
from otrace.contexts.safe import safe_repr, safe_str
from otrace.contexts.store import STORE
from otrace.log import announce, get_logger
from otrace.params import PARAMS
from otrace.tracing import debugger
from otrace.tracing.conditions import OPS, And, ArgTest, ConditionError, Predicate, get_tag

log = get_logger("tracing")

ACTIONS = ("break", "pdb", "ipdb", "hold", "tag")
_EMPTY = inspect.Parameter.empty

_lock = threading.RLock()
_registry: dict[str, TraceSpec] = {}
_sites: set[Site] = set()


def _always(args: tuple, kwargs: dict) -> bool:
    return True


def _filterable(part: Predicate, params: dict[str, tuple]) -> bool:
    return (
        isinstance(part, ArgTest)
        and not part.uses_return
        and part.arg in params
        and part.op in OPS
        and (not part.attr or part.attr.isidentifier())
    )


def inline_plan(predicate: Predicate | None, params: dict[str, tuple]) -> tuple | None:
    """What a call-time filter for ``predicate`` tests, as ``(shape, values)`` or None.

    ``shape`` holds one ``(index, keyword, op, attr)`` per argument comparison that can be
    decided from ``args``/``kwargs`` alone (``a==1``, ``a.x>2``; all of them when joined by
    ``,``), and ``values`` the matching ``(default, expected)`` pairs.  Items naming
    ``return`` or a ``**kwargs`` entry are left to the full evaluation; they cannot turn a
    certain no-match into a match because every item must hold.  None: nothing to filter
    (no condition, or a predicate of another kind).
    """
    if predicate is None:
        return None
    parts = predicate.parts if isinstance(predicate, And) else (predicate,)
    if not all(isinstance(p, ArgTest) for p in parts):
        return None
    shape: list[tuple] = []
    values: list[Any] = []
    for part in parts:
        if not _filterable(part, params):
            continue
        assert isinstance(part, ArgTest)
        index, keyword, default = params[part.arg]
        shape.append((index, keyword, part.op, part.attr))
        values += [default, part.value]
    return (tuple(shape), tuple(values)) if shape else None


def filter_source(shape: tuple, indent: str) -> list[str]:
    """Source lines that set ``hit = False`` when the call certainly does not match.

    They read ``args``, ``kwargs`` and ``c`` = ``(shape id, default0, expected0, ...)``;
    ``hit`` must be True before them.  An item that raises leaves ``hit`` True (the full
    evaluation then records the error).
    """
    lines: list[str] = []
    for n, (index, keyword, op, attr) in enumerate(shape):
        pad = indent + "    " * n
        if n:
            lines.append(f"{pad[:-4]}if hit:")
        fallback = f"kwargs.get({keyword!r}, c[{2 * n + 1}])" if keyword else f"c[{2 * n + 1}]"
        if index is None:
            lines.append(f"{pad}v{n} = {fallback}")
        else:
            lines += [
                f"{pad}try:",
                f"{pad}    v{n} = args[{int(index)}]",
                f"{pad}except IndexError:",
                f"{pad}    v{n} = {fallback}",
            ]
        dot = f".{attr}" if attr else ""
        lines += [
            f"{pad}try:",
            f"{pad}    if not (v{n}{dot} {op} c[{2 * n + 2}]):",
            f"{pad}        hit = False",
            f"{pad}except Exception:",
            f"{pad}    pass",
        ]
    return lines


def compile_quick(predicate: Predicate, params: dict[str, tuple]) -> Callable[[tuple, dict], bool]:
    """The call-time pre-filter ``(args, kwargs) -> might match`` for ``predicate``.

    Argument comparisons become one generated function (see :func:`filter_source`) that
    indexes ``args`` by position and compares inline: no signature binding, no allocation,
    no helper calls.  False means certainly no match; True means evaluate fully.  Other
    predicates use their own ``quick``.
    """
    plan = inline_plan(predicate, params)
    if plan is None:
        parts = predicate.parts if isinstance(predicate, And) else (predicate,)
        if all(isinstance(p, ArgTest) for p in parts):
            return _always
        return predicate.quick(params)
    shape, values = plan
    lines = ["def quick(args, kwargs):", "    hit = True", *filter_source(shape, "    ")]
    lines.append("    return hit")
    env: dict[str, Any] = {"c": (None, *values)}
    exec("\n".join(lines), env)  # noqa: S102 - source built from validated names and ops
    return env["quick"]


class TraceSpec:
    """One active trace: key, condition, action, remaining count, and what happened so far.

    ``matches`` counts condition matches, ``traced`` the ones that left a context;
    ``last_error`` / ``errors`` are condition evaluation failures (they count as no match);
    ``warnings`` are notes made at trace time.
    """

    def __init__(
        self,
        key: str,
        predicate: Predicate | None,
        action: str | None = None,
        count: int = 0,
        display: str | None = None,
    ) -> None:
        self.key = key
        self.display = display or key
        self.predicate = predicate
        self.action = action or None
        self.count = count
        self.when = (
            "return"
            if predicate is not None and (predicate.uses_return or action == "tag")
            else "call"
        )
        self.log_return = predicate is not None and predicate.render() in ("all", "return")
        self.matches = 0
        self.traced = 0
        self.errors = 0
        self.last_error: str | None = None
        self.warnings: list[str] = []
        self.created = time.time()
        self.active = True
        self._lock = threading.Lock()

    @property
    def condition(self) -> str:
        """The condition as typed (``""`` for exceptions only)."""
        return self.predicate.render() if self.predicate is not None else ""

    def render(self) -> str:
        """``[-a ACTION ][-c COND ][-n N ]NAME`` with the remaining count."""
        parts = []
        if self.action:
            parts.append(f"-a {self.action}")
        if self.predicate is not None:
            cond = self.condition
            parts.append(f"-c {cond if ' ' not in cond else repr(cond)}")
        if self.count:
            parts.append(f"-n {self.count:+d}" if self.count < 0 else f"-n {self.count}")
        parts.append(self.display)
        return " ".join(parts)

    def note_error(self, exc: BaseException) -> None:
        """Record a condition evaluation failure (any thread)."""
        text = (
            safe_str(exc, 300)
            if isinstance(exc, ConditionError)
            else f"{type(exc).__name__}: {safe_str(exc, 300)}"
        )
        self.errors += 1
        self.last_error = text

    def take(self) -> bool:
        """Account for one match; True if it is to be traced (counts applied)."""
        with self._lock:
            if not self.active:
                return False
            self.matches += 1
            if self.count < 0:
                self.count += 1
                return False
            if self.count > 0:
                self.count -= 1
                if self.count == 0:
                    self.active = False
            self.traced += 1
            exhausted = not self.active
        if exhausted:
            unregister(self.key, self)
        return True

    def __repr__(self) -> str:
        return f"<TraceSpec {self.render()}>"


class Site:
    """One installed wrapper around one function (see the module docstring)."""

    def __init__(
        self, func: Callable, name: str, keys: tuple[str, ...], self_index: int | None
    ) -> None:
        self.func = func
        self.name = name
        self.keys = keys
        self.self_index = self_index
        self.is_async = inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
        # (spec, quick or None, inline constants or None): see refresh() and wrappers.py.
        # ``armed`` is what applies; ``state``, what wrappers read, is ``armed`` only while
        # trace_active is on (else None), so a wrapper tests one attribute per call.
        self.armed: tuple[TraceSpec, Callable[[tuple, dict], bool] | None, tuple | None] | None
        self.armed = None
        self.state: tuple[TraceSpec, Callable[[tuple, dict], bool] | None, tuple | None] | None
        self.state = None
        # set by wrappers.make_wrapper: retune(plan) -> inline constants (or None)
        self.retune: Callable[[tuple | None], tuple | None] | None = None
        self.wrapper: Callable | None = None
        self._sig: inspect.Signature | None = None
        self._params: dict[str, tuple] | None = None
        self.varargs: str | None = None
        self.varkw: str | None = None

    @property
    def signature(self) -> inspect.Signature | None:
        if self._sig is None:
            try:
                self._sig = inspect.signature(self.func)
            except (TypeError, ValueError):
                return None
        return self._sig

    @property
    def params(self) -> dict[str, tuple]:
        """name -> (positional index or None, keyword or None, default) for plain parameters."""
        if self._params is None:
            out: dict[str, tuple] = {}
            sig = self.signature
            if sig is not None:
                for i, p in enumerate(sig.parameters.values()):
                    if p.kind is p.POSITIONAL_ONLY:
                        out[p.name] = (i, None, p.default)
                    elif p.kind is p.POSITIONAL_OR_KEYWORD:
                        out[p.name] = (i, p.name, p.default)
                    elif p.kind is p.KEYWORD_ONLY:
                        out[p.name] = (None, p.name, p.default)
                    elif p.kind is p.VAR_POSITIONAL:
                        self.varargs = p.name
                    else:
                        self.varkw = p.name
            self._params = out
        return self._params

    def refresh(self, force: bool = False) -> None:
        """Pick the spec that applies now (registry lock held).

        The inlined filter (``retune``) is used only while ``trace_related`` is off: with it
        on, every call must reach :func:`on_call` (see the ``trace_related`` listener).
        """
        self.armed = self._pick(force)
        self.publish()

    def publish(self) -> None:
        """Show wrappers the armed state while trace_active is on (registry lock held)."""
        self.state = self.armed if PARAMS.trace_active else None

    def _pick(self, force: bool):
        for key in self.keys:
            spec = _registry.get(key)
            if spec is not None:
                if not force and self.armed is not None and self.armed[0] is spec:
                    return self.armed  # unchanged: keep the compiled filter
                predicate = spec.predicate
                quick = None if predicate is None else compile_quick(predicate, self.params)
                consts = None
                if self.retune is not None:
                    plan = None if PARAMS.trace_related else inline_plan(predicate, self.params)
                    consts = self.retune(plan)
                return (spec, quick, consts)
        return None

    def __repr__(self) -> str:
        return f"<Site {self.name}>"


# -- registry ------------------------------------------------------------------------------


def _refresh_all(force: bool = False) -> None:
    for site in list(_sites):
        site.refresh(force)


def _on_param(name: str, old: Any, new: Any) -> None:
    if name == "trace_related" and bool(old) != bool(new):
        with _lock:
            _refresh_all(force=True)
    elif name == "trace_active" and bool(old) != bool(new):
        with _lock:
            for site in list(_sites):
                site.publish()


PARAMS.add_listener(_on_param)


def add_site(site: Site) -> None:
    with _lock:
        _sites.add(site)
        site.refresh()


def drop_site(site: Site) -> None:
    with _lock:
        _sites.discard(site)
        site.armed = site.state = None


def register(spec: TraceSpec) -> None:
    """Make ``spec`` the trace for its key (replacing any) and turn ``trace_active`` on."""
    with _lock:
        old = _registry.get(spec.key)
        if old is not None:
            old.active = False
        _registry[spec.key] = spec
        _refresh_all()
        # switched under the lock: a count running out on a traced thread (unregister)
        # must not turn tracing off after this spec arrived
        if not PARAMS.trace_active:
            PARAMS.set("trace_active", True)


def unregister(key: str, spec: TraceSpec | None = None) -> TraceSpec | None:
    """Remove the spec under ``key`` (only if it is ``spec``, when given).  Any thread."""
    with _lock:
        current = _registry.get(key)
        if current is None or (spec is not None and current is not spec):
            return None
        del _registry[key]
        current.active = False
        _refresh_all()
        if not _registry and PARAMS.trace_active:
            PARAMS.set("trace_active", False)
    return current


def clear_registry() -> None:
    """Remove every spec (wrappers stay, as pass-through) and turn ``trace_active`` off."""
    with _lock:
        for spec in _registry.values():
            spec.active = False
        _registry.clear()
        _refresh_all()
        if PARAMS.trace_active:
            PARAMS.set("trace_active", False)


def specs() -> list[TraceSpec]:
    with _lock:
        return sorted(_registry.values(), key=lambda s: s.key)


def get_spec(key: str) -> TraceSpec | None:
    return _registry.get(key)


# -- per call ------------------------------------------------------------------------------


class Call:
    """The state of one traced invocation (private to it)."""

    __slots__ = (
        "site",
        "spec",
        "args",
        "kwargs",
        "frame",
        "result",
        "returned",
        "ctx",
        "hold",
        "_bound",
    )

    def __init__(
        self, site: Site, spec: TraceSpec, args: tuple, kwargs: dict, frame: FrameType
    ) -> None:
        self.site = site
        self.spec = spec
        self.args = args
        self.kwargs = kwargs
        self.frame = frame
        self.result: Any = None
        self.returned = False
        self.ctx: TraceContext | None = None
        self.hold: holds.Hold | None = None
        self._bound: dict[str, Any] | None = None

    def arguments(self) -> dict[str, Any]:
        """Bound arguments by name, defaults applied (``*args``/``**kwargs`` under their names)."""
        if self._bound is None:
            sig = self.site.signature
            try:
                if sig is None:
                    raise TypeError("no signature")
                bound = sig.bind(*self.args, **self.kwargs)
                bound.apply_defaults()
                self._bound = dict(bound.arguments)
            except TypeError:
                self._bound = {"args": self.args, "kwargs": dict(self.kwargs)}
        return self._bound

    def flat_arguments(self) -> list[tuple[str, Any]]:
        """(name, value) pairs with ``*args`` items and ``**kwargs`` entries spread out."""
        site = self.site
        out: list[tuple[str, Any]] = []
        for name, value in self.arguments().items():
            if name == site.varargs and isinstance(value, tuple):
                out.extend((f"{name}[{i}]", v) for i, v in enumerate(value))
            elif name == site.varkw and isinstance(value, dict):
                out.extend(value.items())
            else:
                out.append((name, value))
        return out

    def value_of(self, name: str) -> Any:
        if name == "return":
            if not self.returned:
                raise ConditionError("return value is not known at call time")
            return self.result
        site = self.site
        entry = site.params.get(name)
        if entry is not None:
            index, keyword, default = entry
            if index is not None and index < len(self.args):
                return self.args[index]
            if keyword is not None and keyword in self.kwargs:
                return self.kwargs[keyword]
            if default is not _EMPTY:
                return default
            raise ConditionError(f"argument {name!r} was not passed")
        if site.varkw is not None and name in self.kwargs:
            return self.kwargs[name]
        raise ConditionError(f"no argument {name!r}")

    def self_obj(self) -> Any:
        index = self.site.self_index
        if index is not None and len(self.args) > index:
            return self.args[index]
        return None


def _value_text(value: Any) -> str:
    if isinstance(value, type):
        return value.__name__
    return safe_str(value, 200)


def format_call_args(call: Call) -> str:
    """``self=<...>, name=apple, qty=3`` for log lines (values bounded)."""
    parts = []
    varargs = call.site.varargs
    for name, value in call.arguments().items():
        if name == varargs:
            if value:
                parts.append(safe_repr(value, 200))
        else:
            parts.append(f"{name}={_value_text(value)}")
    return ", ".join(parts)


def say(text: str) -> None:
    """Announce a trace event (truncated to ``log_truncate``)."""
    limit = PARAMS.log_truncate
    if limit and len(text) > limit:
        text = text[:limit] + "..."
    announce(text)


def _evaluate(spec: TraceSpec, predicate: Predicate, call: Call) -> str | None:
    try:
        return predicate.match(call)
    except Exception as exc:  # a condition never breaks the traced call
        spec.note_error(exc)
        return None


def on_call(site: Site, spec: TraceSpec, args: tuple, kwargs: dict) -> Call | None:
    """Call-time processing; returns the Call if anything remains to do at return."""
    try:
        call = Call(site, spec, args, kwargs, sys._getframe(1))
        predicate = spec.predicate
        if predicate is None:
            _related(call)
            return None
        if spec.when == "return":
            return call
        label = _evaluate(spec, predicate, call)
        if label is None:
            _related(call)
            return None
        if not spec.take():
            return None
        _record(call, label)
        return call
    except Exception:
        log.exception("tracing the call of %s failed", site.name)
        return None


def on_return(call: Call, result: Any) -> holds.Hold | None:
    """Return-time processing; returns a hold the (async) wrapper must await, if any."""
    try:
        spec = call.spec
        ctx = call.ctx
        if ctx is not None:
            ctx.trc["return_value"] = result
            if spec.log_return:
                say(f"{ctx.id} return {safe_str(result, 500)}")
            return None
        call.result, call.returned = result, True
        label = _evaluate(spec, spec.predicate, call) if spec.predicate is not None else None
        if label is None:
            _related(call)
            return None
        if not spec.take():
            return None
        if spec.action == "tag":
            _tag_self(call, label)
            return None
        _record(call, label, at_return=True)
        return call.hold
    except Exception:
        log.exception("tracing the return of %s failed", call.site.name)
        return None


def on_exception(site: Site, spec: TraceSpec, exc: BaseException) -> None:
    """Record an ``exceptions`` context for ``exc`` leaving ``site``'s function."""
    try:
        wrapper_frame = sys._getframe(1)
        values, trc = capture.capture_exception(
            exc, exc.__traceback__, wrapper_frame.f_back, deep=PARAMS.deep_copy
        )
        trc["func"] = site.func
        trc["task"] = capture.current_task_name()
        ctx = TraceContext("exceptions", site.name, type(exc).__name__, values, trc)
        STORE.add(ctx)
        say(ctx.id)
    except Exception:
        log.exception("recording the exception of %s failed", site.name)


def _record(call: Call, label: str, at_return: bool = False) -> None:
    """Make the call/return context, announce it, then act (break, pdb, hold)."""
    site, spec = call.site, call.spec
    action = spec.action
    kind, note = "traces", ""
    if action == "break":
        if holds.can_block():
            kind = "breaks"
        else:
            note = "break refused: this thread runs an event loop (or the console); use -a hold on an async def"
    elif action in ("pdb", "ipdb"):
        if not holds.can_block():  # a debugger prompt would block the loop like a break
            note = (
                f"{action} refused: this thread runs an event loop (or the console); "
                "use -a hold on an async def"
            )
    elif action == "hold":
        if site.is_async and holds.running_loop() is not None:
            kind = "holds"
        else:
            note = "hold ignored: only async def functions can be held"
    argstr = format_call_args(call)
    trc: dict[str, Any] = {
        "func": site.func,
        "stack": capture.capture_call_stack(call.frame),
        "argstr": argstr,
        "task": capture.current_task_name(),
    }
    if at_return:
        trc["return_value"] = call.result
    values = capture.snapshot(call.arguments(), PARAMS.deep_copy)
    ctx = TraceContext(kind, site.name, label, values, trc)
    call.ctx = ctx
    live: holds.Break | holds.Hold | None = None
    if kind == "breaks":
        live = holds.new_break(ctx)
    elif kind == "holds":
        live = holds.new_hold(ctx)
    STORE.add(ctx)
    say(f"{ctx.id} {argstr}")
    if at_return:
        say(f"{ctx.id} return {safe_str(call.result, 500)}")
    if note:
        say(f"{ctx.id}: {note}")
    if isinstance(live, holds.Break):
        live.wait()
    elif isinstance(live, holds.Hold):
        call.hold = live
    elif action in ("pdb", "ipdb") and not note:
        debugger.start_debugger(action)


def _tag_self(call: Call, label: str) -> None:
    from otrace.tracing.tags import tag

    obj = call.self_obj()
    if obj is None:
        call.spec.note_error(ConditionError(f"{call.site.name}: no self to tag"))
        return
    extra = {k: v for k, v in call.arguments().items() if k != "self"}
    try:
        tag(obj, f"{label};0x{id(obj):x}", **extra)
    except Exception as exc:
        call.spec.note_error(exc)


def _related(call: Call) -> None:
    """``trace_related``: note calls whose arguments (or return value) carry a tag."""
    if not PARAMS.trace_related:
        return
    try:
        values = [v for _, v in call.flat_arguments()]
        if call.returned:
            values.append(call.result)
        owner = call.self_obj()
        for value in values:
            tag_id = get_tag(value)
            if not tag_id or value is owner:
                continue
            tag_ctx = STORE.get(tag_id)
            if tag_ctx is not None:
                key = type(owner).__name__ if owner is not None else call.site.name
                tag_ctx.trc.setdefault("related", {})[key] = (
                    owner if owner is not None else call.site.func
                )
            say(f"{call.site.name}: related to {tag_id} {format_call_args(call)}")
            return
    except Exception:
        log.exception("related tracing of %s failed", call.site.name)
