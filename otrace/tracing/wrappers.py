"""Tracing a callable: in place when possible, else a wrapper; installing on classes and modules.

A traced function is instrumented in place (:mod:`otrace.tracing.instrument`): the program
keeps the same function object and sees no wrapper.  A wrapper is used only where that is
impossible -- no source (``exec``'d code, a ``.pyc`` without its ``.py``), source that no
longer matches the running code, a lambda.  There the program can tell: the attribute holds
another object (``is`` and pickling by reference differ), ``inspect`` must follow
``__wrapped__``, the wrapper's frame is on the stack while the function runs and keeps the
arguments alive, and generator / async wrappers check arguments only when first iterated.
The trace's warnings name every function traced with a wrapper and why.

One wrapper template per kind, chosen from the original's code flags:

* plain function -- ``def wrapper(*args, **kwargs)``;
* generator function -- a generator that proxies with ``yield from`` (so ``send``, ``throw``
  and ``close`` reach the original; the final ``StopIteration`` value is the return value);
* ``async def`` -- an ``async def`` wrapper (``inspect.iscoroutinefunction`` stays true),
  traced at completion; it awaits a hold when the ``hold`` action fires;
* async generator -- an async generator proxying ``asend``/``athrow``/``aclose``.

Known difference: generator, coroutine and async generator wrappers are themselves generator
/ coroutine functions, so an argument error (``TypeError`` from a bad call) surfaces when the
result is first iterated or awaited instead of at the call.

Each wrapper keeps ``__name__``, ``__qualname__``, ``__doc__``, ``__module__``,
``__wrapped__`` (so ``inspect.signature`` is the original's) and ``_otrace_orig_function``.
Its code objects are registered with :func:`otrace.contexts.capture.hide_code`, so trace
contexts never show wrapper frames.

Installing (:func:`install`) rebinds one attribute of a class or module; for classes the raw
``__dict__`` entry decides: a function is an instance method, ``classmethod`` and
``staticmethod`` are re-decorated around the wrapper, a ``property`` gets its getter, setter
and deleter wrapped.  Only the attribute is rebound: references taken earlier keep calling the
original.  Thread rules: install/uninstall under the engine's registry lock (any thread).

This module stays whole (about 460 lines): the four wrapper templates are hot-path code kept
side by side so they stay alike, and installing is what chooses among them.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections.abc import Callable
from types import CodeType
from typing import Any

from otrace.contexts.capture import hide_code
from otrace.errors import TraceError
from otrace.log import get_logger
from otrace.tracing import handlers, instrument
from otrace.tracing.engine import Site, filter_source, return_filter_source
from otrace.tracing.instrument import _busy, busy, record_exception
from otrace.tracing.registry import Tracer

log = get_logger("tracing")


# What the wrappers call: the handlers, skipped while this thread records (a traced function
# called by recording runs untraced), exceptions through instrument.py's leave filter.
def on_call(site: Site, spec: Any, args: tuple, kwargs: dict) -> Any:
    if busy():
        return None
    _busy.on = True
    try:
        return handlers.on_call(site, spec, args, kwargs, sys._getframe(1))
    finally:
        _busy.on = False


def on_return(call: Any, result: Any) -> Any:
    if busy():
        return None
    _busy.on = True
    try:
        return handlers.on_return(call, result)
    finally:
        _busy.on = False


def on_late_return(site: Site, spec: Any, args: tuple, kwargs: dict, result: Any) -> Any:
    """A return value that may match a return-only condition: make the ``Call`` now and
    take the usual return path (admission, count, context, announcement); returns the hold
    an async wrapper must await, if any."""
    if busy():
        return None
    return instrument.late_return(site, spec, args, kwargs, result, sys._getframe(1))


def on_exception(site: Site, spec: Any, exc: BaseException) -> None:
    record_exception(site, spec, exc, sys._getframe(1).f_back)


def _make_sync(site: Site, func: Callable) -> Callable:
    params = site.tracer.params  # captured at wrap time: no lookup per call

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = site.state
        if state is None:  # not traced, or trace_active off
            return func(*args, **kwargs)
        spec, quick, _ = state
        if (quick is None or not quick(args, kwargs)) and not params.trace_related:
            # Not matching (or exceptions only): no Call, only the exception hook.
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                on_exception(site, spec, exc)
                raise
        call = on_call(site, spec, args, kwargs)
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            on_exception(site, spec, exc)
            raise
        if call is not None:
            on_return(call, result)
        return result

    return wrapper


# The same wrapper with a condition's argument tests inlined (see _retuner).  ``c`` is the
# state's constants; its first item is the shape id the code was generated for, so code and
# state that do not belong together (a registry change racing a call) use ``quick`` instead.
# The engine publishes constants only while ``trace_related`` is off, so the inlined path
# need not read that parameter.
_INLINE_SYNC = """
def _make_sync(site, func):
    params = site.tracer.params

    def wrapper(*args, **kwargs):
        state = site.state
        if state is None:  # not traced, or trace_active off
            return func(*args, **kwargs)
        spec, quick, c = state
        if c is not None and c[0] == {shape_id}:
            hit = True
{tests}
            if not hit:
                try:
                    return func(*args, **kwargs)
                except Exception as exc:
                    on_exception(site, spec, exc)
                    raise
        elif (quick is None or not quick(args, kwargs)) and not params.trace_related:
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                on_exception(site, spec, exc)
                raise
        call = on_call(site, spec, args, kwargs)
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            on_exception(site, spec, exc)
            raise
        if call is not None:
            on_return(call, result)
        return result

    return wrapper
"""
# The same for a condition on the return value only (``return==99``): nothing is decided
# before the call, so the wrapper calls, tests the value it holds, and only on a possible
# match makes the ``Call`` (its args/kwargs are the tuples it was called with).
_RETURN_SYNC = """
def _make_sync(site, func):
    params = site.tracer.params

    def wrapper(*args, **kwargs):
        state = site.state
        if state is None:  # not traced, or trace_active off
            return func(*args, **kwargs)
        spec, quick, c = state
        if c is not None and c[0] == {shape_id}:
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                on_exception(site, spec, exc)
                raise
            hit = True
{tests}
            if hit:
                on_late_return(site, spec, args, kwargs, result)
            return result
        if (quick is None or not quick(args, kwargs)) and not params.trace_related:
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                on_exception(site, spec, exc)
                raise
        call = on_call(site, spec, args, kwargs)
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            on_exception(site, spec, exc)
            raise
        if call is not None:
            on_return(call, result)
        return result

    return wrapper
"""
# A pure cache of generated wrapper code per condition shape (same for every runtime).
_SHAPES: dict[tuple, CodeType] = {}
_SHAPE_IDS: dict[tuple, int] = {}
_shapes_lock = threading.Lock()


def _inline_code(shape: tuple) -> tuple[int, CodeType]:
    """The sync wrapper's code with ``shape``'s tests inlined (cached per shape)."""
    with _shapes_lock:
        code = _SHAPES.get(shape)
        if code is None:
            shape_id = _SHAPE_IDS.setdefault(shape, len(_SHAPE_IDS) + 1)
            if shape[0] == "return":
                source = _RETURN_SYNC.format(
                    shape_id=shape_id, tests="\n".join(return_filter_source(shape, " " * 12))
                )
            else:
                source = _INLINE_SYNC.format(
                    shape_id=shape_id, tests="\n".join(filter_source(shape, " " * 12))
                )
            env: dict[str, Any] = {}
            exec(compile(source, __file__, "exec"), env)  # noqa: S102 - validated names/ops
            inner = _inner_codes(env["_make_sync"])[0]
            template = _inner_codes(_make_sync)[0]
            code = inner.replace(
                co_name=template.co_name,
                co_qualname=template.co_qualname,
                co_filename=template.co_filename,
            )
            if code.co_freevars != template.co_freevars:
                raise RuntimeError("inline wrapper does not fit")  # pragma: no cover
            hide_code(code)
            _SHAPES[shape] = code
        return _SHAPE_IDS[shape], code


def _retuner(site: Site, wrapper: Callable) -> Callable[[tuple | None], tuple | None]:
    """``retune(plan)``: swap the sync wrapper's code to inline ``plan``'s tests.

    Called by :meth:`Site.refresh` under the registry lock before the new state is
    published.  Returns the constants the state must carry (shape id first), or None
    (generic code).  A call running the old code keeps running it; the shape check in the
    inlined code sends any mismatched pair of code and state to the generic ``quick`` path.
    """
    generic = wrapper.__code__

    def retune(plan: tuple | None) -> tuple | None:
        if plan is None:
            wrapper.__code__ = generic
            return None
        shape, values = plan
        try:
            shape_id, code = _inline_code(shape)
        except Exception:  # pragma: no cover - keep the generic wrapper
            log.exception("inlining the condition for %s failed", site.name)
            wrapper.__code__ = generic
            return None
        wrapper.__code__ = code
        return (shape_id, *values)

    return retune


def _value_retuner(plan: tuple | None) -> tuple | None:
    """``retune`` of the generator and coroutine wrappers: for a return-only condition the
    constants ``(0, value test)`` (they keep their code; 0 is no sync shape id)."""
    if plan is None or plan[0][0] != "return":
        return None
    shape, values = plan
    lines = ["def test(result):", "    hit = True", *return_filter_source(shape, "    ")]
    env: dict[str, Any] = {"c": (None, *values)}
    exec("\n".join([*lines, "    return hit"]), env)  # noqa: S102 - validated ops
    return (0, env["test"])


def _make_generator(site: Site, func: Callable) -> Callable:
    params = site.tracer.params  # captured at wrap time: no lookup per call

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = site.state
        if state is None:  # not traced, or trace_active off
            return (yield from func(*args, **kwargs))
        spec, quick, c = state
        if c is not None:  # a return-only condition: c = (0, value test), see _value_retuner
            try:
                result = yield from func(*args, **kwargs)
            except Exception as exc:
                on_exception(site, spec, exc)
                raise
            if c[1](result):
                on_late_return(site, spec, args, kwargs, result)
            return result
        call = (
            on_call(site, spec, args, kwargs)
            if (quick is not None and quick(args, kwargs)) or params.trace_related
            else None
        )
        try:
            result = yield from func(*args, **kwargs)
        except Exception as exc:
            on_exception(site, spec, exc)
            raise
        if call is not None:
            on_return(call, result)
        return result

    return wrapper


def _make_coroutine(site: Site, func: Callable) -> Callable:
    params = site.tracer.params  # captured at wrap time: no lookup per call

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = site.state
        if state is None:  # not traced, or trace_active off
            return await func(*args, **kwargs)
        spec, quick, c = state
        if c is not None:  # a return-only condition: c = (0, value test), see _value_retuner
            try:
                result = await func(*args, **kwargs)
            except Exception as exc:
                on_exception(site, spec, exc)
                raise
            if c[1](result):
                hold = on_late_return(site, spec, args, kwargs, result)
                if hold is not None:
                    await hold
            return result
        call = (
            on_call(site, spec, args, kwargs)
            if (quick is not None and quick(args, kwargs)) or params.trace_related
            else None
        )
        if call is not None and call.hold is not None:
            await call.hold
        try:
            result = await func(*args, **kwargs)
        except Exception as exc:
            on_exception(site, spec, exc)
            raise
        if call is not None:
            hold = on_return(call, result)
            if hold is not None:
                await hold
        return result

    return wrapper


def _make_asyncgen(site: Site, func: Callable) -> Callable:
    params = site.tracer.params  # captured at wrap time: no lookup per call

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        inner = func(*args, **kwargs)
        state = site.state
        if state is None:  # not traced, or trace_active off
            spec = call = None
        else:
            spec, quick, _ = state
            call = (
                on_call(site, spec, args, kwargs)
                if (quick is not None and quick(args, kwargs)) or params.trace_related
                else None
            )
            if call is not None and call.hold is not None:
                await call.hold
        try:
            try:
                item = await inner.__anext__()
            except StopAsyncIteration:
                pass
            else:
                while True:
                    try:
                        sent = yield item
                    except GeneratorExit:
                        await inner.aclose()
                        raise
                    except BaseException as thrown:
                        try:
                            item = await inner.athrow(thrown)
                        except StopAsyncIteration:
                            break
                    else:
                        try:
                            item = await inner.asend(sent)
                        except StopAsyncIteration:
                            break
        except Exception as exc:
            if spec is not None:
                on_exception(site, spec, exc)
            raise
        if call is not None:
            hold = on_return(call, None)
            if hold is not None:
                await hold

    return wrapper


def _inner_codes(factory: Callable) -> list[CodeType]:
    return [c for c in factory.__code__.co_consts if isinstance(c, CodeType)]


for _factory in (_make_sync, _make_generator, _make_coroutine, _make_asyncgen):
    hide_code(*_inner_codes(_factory))


def make_wrapper(site: Site) -> Callable:
    """Build the wrapper for ``site.func`` according to its kind."""
    func = site.func
    if inspect.isasyncgenfunction(func):
        factory = _make_asyncgen
    elif inspect.iscoroutinefunction(func):
        factory = _make_coroutine
    elif inspect.isgeneratorfunction(func):
        factory = _make_generator
    else:
        factory = _make_sync
    wrapper = factory(site, func)
    if factory is _make_sync:
        site.retune = _retuner(site, wrapper)
    elif factory is not _make_asyncgen:  # (an async generator returns nothing to test)
        site.retune = _value_retuner
    functools.update_wrapper(wrapper, func)
    wrapper._otrace_orig_function = func  # type: ignore[attr-defined]
    wrapper._otrace_site = site  # type: ignore[attr-defined]
    site.wrapper = wrapper
    return wrapper


def is_wrapper(obj: Any) -> bool:
    return callable(obj) and getattr(obj, "_otrace_site", None) is not None


def check_function(func: Any, name: str) -> Callable:
    """The Python function to wrap, or TraceError (builtins, C functions, other objects)."""
    if inspect.isfunction(func):
        return func
    if (
        inspect.isbuiltin(func)
        or inspect.ismethoddescriptor(func)
        or type(func).__name__
        in (
            "wrapper_descriptor",
            "method-wrapper",
            "method_descriptor",
            "builtin_function_or_method",
        )
    ):
        raise TraceError(f"Cannot trace {name}: builtin/C functions have no Python code to wrap")
    raise TraceError(f"Cannot trace {name}: {type(func).__name__} is not a Python function")


class Patch:
    """One rebound attribute: parent, name, the original raw value and our replacement."""

    def __init__(
        self, parent: Any, attr: str, original: Any, installed: Any, sites: list[Site]
    ) -> None:
        self.parent = parent
        self.attr = attr
        self.original = original
        self.installed = installed
        self.sites = sites
        self.owners: set[str] = set()

    @property
    def name(self) -> str:
        return self.sites[0].name if self.sites else self.attr

    def uninstall(self) -> None:
        """Put the original back, if the attribute still holds our wrapper."""
        current = (
            self.parent.__dict__.get(self.attr)
            if isinstance(self.parent, type)
            else getattr(self.parent, self.attr, None)
        )
        if current is self.installed:
            setattr(self.parent, self.attr, self.original)


def wrap_raw(
    raw: Any, name: str, keys: tuple[str, ...], in_class: bool, tracer: Tracer
) -> tuple[Any, list[Site]]:
    """Trace a raw attribute value for ``tracer``; returns (replacement, sites).

    The replacement is ``raw`` itself when every function in it was instrumented in place.
    A site traced with a wrapper carries the reason as ``site.wrapped_because``.
    """

    def one(func: Any, self_index: int | None) -> tuple[Callable, Site]:
        site = Site(check_function(func, name), name, keys, self_index, tracer)
        try:
            instrument.instrument(site)
        except TraceError as exc:
            site.wrapped_because = str(exc)  # type: ignore[attr-defined]
        else:
            return site.func, site
        wrapper = make_wrapper(site)
        instrument.note_wrapped(site)
        return wrapper, site

    cached = cached_function(raw)
    if cached is not None:
        # functools.lru_cache / cached_property: only in place, a wrapper would bypass the cache
        site = Site(cached, name, keys, 0 if in_class else None, tracer)
        try:
            instrument.instrument(site)
        except TraceError as exc:
            raise TraceError(
                f"Cannot trace {name}: it is a {type(raw).__module__}.{type(raw).__qualname__} "
                f"around a Python function that cannot be instrumented in place ({exc}); "
                "a wrapper would bypass the cache"
            ) from None
        return raw, [site]
    if isinstance(raw, staticmethod):
        wrapper, site = one(raw.__func__, None)
        return (raw if wrapper is raw.__func__ else staticmethod(wrapper)), [site]
    if isinstance(raw, classmethod):
        wrapper, site = one(raw.__func__, 0)
        return (raw if wrapper is raw.__func__ else classmethod(wrapper)), [site]
    if isinstance(raw, property):
        new, sites = raw, []
        for accessor, rebuild in (("fget", "getter"), ("fset", "setter"), ("fdel", "deleter")):
            func = getattr(raw, accessor)
            if func is not None:
                wrapper, site = one(func, 0)
                if wrapper is not func:
                    new = getattr(new, rebuild)(wrapper)
                sites.append(site)
        if not sites:
            raise TraceError(f"Cannot trace {name}: property without accessors")
        return new, sites
    wrapper, site = one(raw, 0 if in_class else None)
    return wrapper, [site]


def cached_function(raw: Any) -> Callable | None:
    """The Python function inside ``functools.lru_cache`` / ``functools.cached_property``."""
    func: Any
    if isinstance(raw, functools.cached_property):
        func = raw.func
    elif type(raw).__name__ == "_lru_cache_wrapper" and hasattr(raw, "cache_info"):
        func = getattr(raw, "__wrapped__", None)
    else:
        return None
    return func if inspect.isfunction(func) else None
