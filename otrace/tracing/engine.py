"""Trace specs and sites, and the fast pre-filters compiled from a spec's condition.

A :class:`TraceSpec` is one ``trace`` command: a registry key (``Cart.add_item``,
``Cart.`` for a whole class, ``shop.*`` for a whole module, ``*`` for every wrapped
function), a condition, an action and a count.  A :class:`Site` is one installed wrapper
around one function; it knows its registry keys, most specific first (``C.m``, ``.m``,
``C.``, ``module.*``, ``*``), and holds ``state`` = ``(spec, quick)`` -- the spec that
currently applies and a fast pre-filter compiled from its condition for that function's
signature (None for an exceptions-only trace) -- recomputed whenever the registry changes.  So a
wrapped call reads one attribute, one parameter and (for conditions) calls one small filter
before the real call; arguments are bound with the function's cached
:class:`inspect.Signature` only when a condition needs names the filter cannot index, or a
context is made.

The registry itself is the runtime's :class:`~otrace.tracing.registry.Tracer` (each site
knows its tracer); what a traced call does is in :mod:`otrace.tracing.handlers`.

Thread rules: :meth:`Site.refresh` and :meth:`Site.publish` run under the tracer's lock (any
thread); :meth:`TraceSpec.take` runs on the traced thread.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from otrace.contexts.safe import exc_text, safe_str
from otrace.log import get_logger
from otrace.tracing.conditions import OPS, And, ArgTest, ConditionError, Predicate

if TYPE_CHECKING:
    from otrace.tracing.registry import Tracer

log = get_logger("tracing")

ACTIONS = ("break", "pdb", "ipdb", "hold", "tag")
_EMPTY = inspect.Parameter.empty


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


def return_parts(predicate: Predicate | None) -> tuple[ArgTest, ...] | None:
    """The items of a condition that tests only the return value (``return==99``,
    ``return!=None,return<5``), or None for any other condition.

    Such a condition cannot be decided before the return, so the back ends keep only the
    arguments at call time and test the value inline at return (see wrapper_inline.py,
    instrument.py); only a possible match goes on to :func:`handlers.on_return`.
    """
    if predicate is None:
        return None
    parts = predicate.parts if isinstance(predicate, And) else (predicate,)
    if not all(
        isinstance(p, ArgTest) and p.arg == "return" and not p.attr and p.op in OPS for p in parts
    ):
        return None
    return tuple(parts)  # type: ignore[arg-type]


def return_plan(predicate: Predicate | None) -> tuple | None:
    """``(shape, values)`` for the wrapper's inlined return-value test, or None.

    ``shape`` is ``("return", op, op, ...)``, ``values`` the expected values in order (read
    as ``c[1]``, ``c[2]``, ... by :func:`return_filter_source`).
    """
    parts = return_parts(predicate)
    if parts is None:
        return None
    return ("return", *(p.op for p in parts)), tuple(p.value for p in parts)


def return_filter_source(shape: tuple, indent: str) -> list[str]:
    """Source lines that set ``hit = False`` when ``result`` certainly does not match
    (``hit`` True before them; a raising comparison leaves it True: the full evaluation
    then records the error)."""
    tests = " and ".join(f"result {op} c[{n}]" for n, op in enumerate(shape[1:], 1))
    return [
        f"{indent}try:",
        f"{indent}    if not ({tests}):",
        f"{indent}        hit = False",
        f"{indent}except Exception:",
        f"{indent}    pass",
    ]


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
        self.tracer: Tracer | None = None  # set when registered

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
            else f"{type(exc).__name__}: {exc_text(exc)}"
        )
        self.errors += 1
        self.last_error = text

    def take(self) -> bool:
        """Account for one match; True if it is to be traced (counts applied).  Any thread."""
        if self.count == 0:  # no count to apply: no lock (about 2,500 instructions a match)
            # (each += is exact under the GIL: the load and store of an int attribute of
            # otrace's own object run no Python code between them, so no thread switch
            # there; errors are counted so too, by note_error.  A count ending below sets
            # active False before count reads 0, so this never takes one match too many.)
            if not self.active:
                return False
            self.matches += 1
            self.traced += 1
            return True
        with self._lock:
            if not self.active:
                return False
            self.matches += 1
            if self.count < 0:
                self.count += 1
                return False
            if self.count > 0:
                if self.count == 1:  # (inactive before count reads 0: see above)
                    self.active = False
                self.count -= 1
            self.traced += 1
            exhausted = not self.active
        if exhausted and self.tracer is not None:
            self.tracer.retire(self.key, self)
        return True

    def __repr__(self) -> str:
        return f"<TraceSpec {self.render()}>"


class Site:
    """One installed wrapper around one function (see the module docstring)."""

    def __init__(
        self,
        func: Callable,
        name: str,
        keys: tuple[str, ...],
        self_index: int | None,
        tracer: Tracer,
    ) -> None:
        self.tracer = tracer
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
        # set by instrument.instrument: on_state(state) swaps the function's code
        self.on_state: Callable[[tuple | None], None] | None = None
        self._sig: inspect.Signature | None = None
        # how a recorded call binds its arguments (see handlers.Call.arguments): made when
        # first needed, dropped with the signature
        self.plan: tuple[tuple[tuple[str, int, Any], ...], ...] | None = None
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
        self.state = self.armed if self.tracer.params.trace_active else None
        if self.on_state is not None:
            self.on_state(self.state)

    def _pick(self, force: bool):
        for key in self.keys:
            spec = self.tracer.registry.get(key)
            if spec is not None:
                if not force and self.armed is not None and self.armed[0] is spec:
                    return self.armed  # unchanged: keep the compiled filter
                predicate = spec.predicate
                quick = None if predicate is None else compile_quick(predicate, self.params)
                consts = None
                if self.retune is not None:
                    plan = (
                        None
                        if self.tracer.params.trace_related
                        else inline_plan(predicate, self.params) or return_plan(predicate)
                    )
                    consts = self.retune(plan)
                return (spec, quick, consts)
        return None

    def __repr__(self) -> str:
        return f"<Site {self.name}>"
