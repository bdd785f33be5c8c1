"""In-place instrumentation: a traced function runs instrumented code in its own ``__code__``.

Instead of rebinding an attribute to a wrapper, the function object itself gets a new code
object compiled from its own source with the trace hooks added, the way ``edit`` already
swaps ``__code__``.  So the program keeps the same function object (identity, pickling by
name, ``__defaults__``, ``inspect`` without ``__wrapped__``), no frame is added to the stack
and no reference to the arguments is kept beyond what the function itself holds.

What the instrumented code adds (all of it reads constants of the code object; nothing is
added to the module's globals):

* exceptions-only trace: ``try: <body> except Exception: PROBE.exc(); raise`` -- free on a call
  that does not raise (3.11+ exception tables);
* a condition: before the body ``_otrace_call_ = None`` and, while the trace is published,
  the condition's argument tests inline (``a == 1``) before ``PROBE.call(<args>)``; every
  ``return X`` becomes ``return X if _otrace_call_ is None else PROBE.ret(_otrace_call_, X)``.
  ``_otrace_call_`` is the one local added (seen by ``locals()``; ``co_varnames`` of the
  arguments are unchanged);
* a condition on the return value only (``return==99``): nothing is decided before the
  return, so no probe is called at entry; ``_otrace_call_`` keeps the arguments as called
  (a tuple) -- or only the published state, when the body never rebinds a parameter and has
  no ``**`` dict, since the parameters are then still as called at the return and are read
  there.  Every ``return X`` stores ``X`` in a second local, ``_otrace_value_``, tests it
  inline, and only a possible match calls ``PROBE.late``, which makes the
  :class:`~otrace.tracing.handlers.Call` and takes the usual return path.

While no trace applies (or ``trace_active`` is off) the original code object runs again: an
installed but inactive trace costs nothing.  Code is built from the source ``linecache``
has; before anything is swapped the source is compiled unchanged and compared with the
running code (bytecode, names, variables, flags), so a file edited on disk after import is
refused (a wrapper is used instead; see :mod:`otrace.tracing.wrappers`).  Nothing is
executed: the function's code object is taken out of the compiled constants, so
decorators and default values do not run again.

Thread rules: :func:`instrument`, :meth:`Instrumented.apply` and :func:`set_code` run under
the registry lock (any thread); the probes run on the traced thread.
"""

from __future__ import annotations

import ast
import inspect
import sys
import threading
from collections.abc import Callable
from types import CodeType, FunctionType
from typing import Any

from otrace.contexts.frames import hide_code
from otrace.contexts.speedups import recording_flag as _c_flag
from otrace.errors import TraceError
from otrace.log import get_logger
from otrace.tracing import engine, handlers
from otrace.tracing.codegen import (
    CO_NESTED,
    compile_at,
    fill,
    function_node,
    function_source,
    module_for,
    requalify,
    same_code,
)
from otrace.tracing.condition_code import (
    inline_tests,
    return_tests,
)
from otrace.tracing.conditions import And, ArgTest, Predicate
from otrace.tracing.handled import RERAISING, leaves
from otrace.tracing.rewrite import (
    CALL_LOCAL,
    PROBE_CONST,
    SITE_CONST,
    VALUE_LOCAL,
    instrumented_node,
    late_split,
    nparams,
)

log = get_logger("tracing")

# Set while this thread records: traced functions called by recording itself (a condition's
# __eq__, a repr asked for) run untraced, so tracing never re-enters itself.  enter() sets it
# (False: it was set already, nothing to do), leave() clears it, busy() reads it.  C's flag
# (a thread-local variable) when built: a threading.local's attribute costs ten times more,
# and a recorded call asks four times.
if _c_flag is not None:
    enter, leave, busy = _c_flag
else:
    _busy = threading.local()

    def busy() -> bool:
        return getattr(_busy, "on", False)

    def enter() -> bool:
        if getattr(_busy, "on", False):
            return False
        _busy.on = True
        return True

    def leave() -> None:
        _busy.on = False


class Probe:
    """What instrumented code calls (a constant of that code); one per traced function."""

    __slots__ = ("site", "split")

    def __init__(self, site: engine.Site, split: bool = False) -> None:
        self.site = site
        self.split = split  # see late(): how the code packs the arguments

    def call(self, args: tuple, kwargs: dict) -> handlers.Call | None:
        site = self.site
        state = site.state
        if state is None or not enter():
            return None
        spec, quick, _ = state
        try:
            if (quick is None or not quick(args, kwargs)) and not site.tracer.params.trace_related:
                return None
            return handlers.on_call(site, spec, args, kwargs, sys._getframe(2))
        finally:
            leave()

    def ret(self, call: handlers.Call, value: Any) -> Any:
        if enter():
            try:
                handlers.on_return(call, value)
            finally:
                leave()
        return value

    async def ret_async(self, call: handlers.Call, value: Any) -> Any:
        hold = None
        if enter():
            try:
                hold = handlers.on_return(call, value)
            finally:
                leave()
        if hold is not None:
            await hold
        return value

    def late(self, packed: Any, value: Any) -> Any:
        """A return value that may match a return-only condition (tested inline): make the
        ``Call`` from the arguments kept at entry and take the usual return path."""
        if not busy():
            self._late(packed, value, sys._getframe(2))
        return value

    async def late_async(self, packed: Any, value: Any) -> Any:
        hold = None
        if not busy():
            hold = self._late(packed, value, sys._getframe(2))
        if hold is not None:
            await hold
        return value

    def _late(self, packed: Any, value: Any, frame: Any) -> Any:
        site = self.site
        state = site.state  # the spec that applies now (None: untraced meanwhile)
        if state is None or state[0].when != "return":
            return None
        args, kwargs = packed if self.split else (packed, {})
        return late_return(site, state[0], args, kwargs, value, frame)

    def exc(self) -> None:
        site = self.site
        state = site.state
        if state is None or busy():
            return
        # (record_exception, inline: one call less per recorded exception)
        exc = sys.exception()
        if not isinstance(exc, Exception):  # (always one: the code catches Exception only)
            return
        caller = sys._getframe(1).f_back
        try:
            if not site.tracer.params.trace_handled and not leaves(exc, caller):
                return
        except Exception:  # pragma: no cover - deciding must never break the program
            pass
        if not enter():  # (checked above; never clear a flag this did not set)
            return
        try:
            handlers.on_exception(site, state[0], exc, caller)
        finally:
            leave()


def late_return(
    site: engine.Site, spec: Any, args: tuple, kwargs: dict, value: Any, frame: Any
) -> Any:
    """A return value that may match a return-only condition (tested inline by either back
    end): make the ``Call`` from the arguments as called and take the usual return path
    (admission, count, context, announcement).  Returns the hold an async caller must
    await, if any.  Traced thread, not busy (the caller checked)."""
    if not enter():  # pragma: no cover - the caller checked
        return None
    try:
        call = handlers.Call(site, spec, args, kwargs, frame)
        return handlers.on_return(call, value)
    except Exception:  # pragma: no cover - on_return logs its own failures
        log.exception("tracing the return of %s failed", site.name)
        return None
    finally:
        leave()


def record_exception(site: engine.Site, spec: Any, exc: Any, caller: Any) -> None:
    """Record ``exc`` leaving ``site``'s function towards ``caller`` (unless it is handled
    there).  (:meth:`Probe.exc` does the same inline.)"""
    if not issubclass(type(exc), Exception) or busy():
        return
    try:
        if not site.tracer.params.trace_handled and not leaves(exc, caller):
            return
    except Exception:  # pragma: no cover - deciding must never break the program
        pass
    if not enter():  # (checked above; never clear a flag this did not set)
        return
    try:
        handlers.on_exception(site, spec, exc, caller)
    finally:
        leave()


RERAISING.add(Probe)
hide_code(
    Probe.call.__code__,
    Probe.ret.__code__,
    Probe.ret_async.__code__,
    Probe.late.__code__,
    Probe.late_async.__code__,
    Probe._late.__code__,
    Probe.exc.__code__,
    late_return.__code__,
)


class Instrumented:
    """One function instrumented in place; ``base`` is the code it runs untraced."""

    def __init__(self, site: engine.Site, func: FunctionType) -> None:
        self.site = site
        self.func = func
        self.base = func.__code__
        self.probe = Probe(site, late_split(self.base))
        # Parsed again when code is built: ASTs kept for hundreds of traced functions would
        # be hundreds of thousands of objects for the program's garbage collector to walk.
        self._source = function_source(func)  # text: not an object graph the gc walks
        self._codes: dict[tuple, CodeType] = {}
        self._check()

    def _check(self) -> None:
        func, base = self.func, self.base
        names = set(base.co_varnames) | set(base.co_names) | set(base.co_freevars)
        if (
            CALL_LOCAL in names
            or VALUE_LOCAL in names
            or any(c in (SITE_CONST, PROBE_CONST) for c in base.co_consts)
        ):
            raise TraceError("it uses otrace's reserved names")
        module, nested = module_for(func, function_node(func, self._source))
        plain = compile_at(func, module)
        if not same_code(plain, base):
            raise TraceError("its source does not match the running code (edited on disk?)")
        self._nested = nested

    def code_for(self, state: tuple | None) -> CodeType:
        """The code to run while ``state`` (the site's published state) applies."""
        if state is None:
            return self.base
        spec = state[0]
        predicate = spec.predicate
        related = self.site.tracer.params.trace_related
        params = set(self.base.co_varnames[: nparams(self.base)])
        calls = related or (
            predicate is not None
            and not _never(predicate, params, bool(self.base.co_flags & inspect.CO_VARKEYWORDS))
        )
        tests = inline_tests(predicate, params) if calls and not related else None
        late = return_tests(engine.return_parts(predicate)) if calls and not related else None
        key = (
            calls,
            ast.dump(tests) if tests is not None else None,
            ast.dump(late) if late is not None else None,
        )
        code = self._codes.get(key)
        if code is None:
            node = instrumented_node(
                function_node(self.func, self._source), self.base, calls, tests, late
            )
            module, _ = module_for(self.func, node)
            built = compile_at(self.func, module)
            built = requalify(
                built,
                built.co_qualname,
                self.base.co_qualname,
                (built.co_flags & ~CO_NESTED) | (self.base.co_flags & CO_NESTED),
            )
            built = built.replace(co_name=self.base.co_name)
            code = fill(built, self.site, self.probe)
            if len(self._codes) > 8:
                self._codes.clear()
            self._codes[key] = code
        return code

    def apply(self, state: tuple | None) -> None:
        """Run the code for ``state`` from the next call on (registry lock held)."""
        try:
            code = self.code_for(state)
        except Exception:
            log.exception("instrumenting %s failed; it runs untraced", self.site.name)
            code = self.base
        if self.func.__code__ is not code:
            self.func.__code__ = code

    def restore(self) -> None:
        self.func.__code__ = self.base


def _never(predicate: Predicate, params: set[str], varkw: bool) -> bool:
    """True when ``predicate`` names an argument this function cannot have: no call can
    match (the trace warned when it was made), so only exceptions are traced."""
    parts = predicate.parts if isinstance(predicate, And) else (predicate,)
    return (
        not varkw
        and all(isinstance(p, ArgTest) for p in parts)
        and any(p.arg != "return" and p.arg not in params for p in parts)  # type: ignore[attr-defined]
    )


# -- the registry of instrumented functions ---------------------------------------------------

_instrumented: dict[int, Instrumented] = {}
# Tests and benchmarks: trace with wrappers only (the fallback back end).
FORCE_WRAPPER = False
_wrapped: dict[int, engine.Site] = {}


def instrument(site: engine.Site) -> Instrumented:
    """Instrument ``site.func`` in place (TraceError saying why it cannot be)."""
    func = site.func
    if not isinstance(func, FunctionType):
        raise TraceError("it is not a Python function")
    first = _instrumented.get(id(func))
    if first is not None:
        # the same function under another name (``get = head = _unimplemented``): its code
        # already reports to the first name's site; this site is an alias of it
        site.alias_of = first.site  # type: ignore[attr-defined]
        return first
    if FORCE_WRAPPER:
        raise TraceError("wrappers forced")
    inst = Instrumented(site, func)
    _instrumented[id(func)] = inst
    site.on_state = inst.apply
    return inst


def release(site: engine.Site) -> None:
    """Put the original code back (registry lock held)."""
    inst = _instrumented.get(id(site.func))
    if inst is not None and inst.site is site:
        del _instrumented[id(site.func)]
        site.on_state = None
        inst.restore()
    _wrapped.pop(id(site.func), None)


def note_wrapped(site: engine.Site) -> None:
    _wrapped[id(site.func)] = site


def instrumented(func: Any) -> Instrumented | None:
    return _instrumented.get(id(func))


def base_code(func: FunctionType) -> CodeType:
    """The code ``func`` runs when untraced (what ``edit`` saves and compares)."""
    inst = _instrumented.get(id(func))
    return inst.base if inst is not None and inst.func is func else func.__code__


def _set_attrs(func: FunctionType, attrs: dict[str, Any] | None) -> None:
    for key, value in (attrs or {}).items():
        setattr(func, key, value)


def set_code(
    func: FunctionType,
    code: CodeType,
    on_loop: Callable | None = None,
    attrs: dict[str, Any] | None = None,
) -> None:
    """Give ``func`` new code (``edit``), re-instrumenting it if it is traced; ``attrs``
    (other attributes, e.g. ``__defaults__`` of the new code) are set first.

    The signature may change: the traced site's argument map and filters are rebuilt, and
    the instrumented variants are generated again from the new source.  A traced function
    is changed under the registry's lock: if that stays busy (``TraceError``, see
    ``Tracer.locked``), nothing of it has changed.
    """
    inst = _instrumented.get(id(func))
    site = inst.site if inst is not None and inst.func is func else _wrapped.get(id(func))
    if site is None:
        _set_attrs(func, attrs)
        func.__code__ = code
        return
    with site.tracer.locked():
        inst = _instrumented.get(id(func))
        site = inst.site if inst is not None and inst.func is func else _wrapped.get(id(func))
        _set_attrs(func, attrs)
        func.__code__ = code
        if site is None:
            return
        site._sig = site._params = site.plan = None
        site.varargs = site.varkw = None
        if inst is not None and inst.func is func:
            try:
                fresh = Instrumented(site, func)
            except TraceError as exc:
                log.warning("%s: %s; traced again only after untrace/trace", site.name, exc)
                del _instrumented[id(func)]
                site.on_state = None
                return
            _instrumented[id(func)] = fresh
            site.on_state = fresh.apply
        site.refresh(force=True)
