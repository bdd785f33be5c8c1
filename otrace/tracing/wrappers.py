"""The wrappers: tracing a callable that cannot be instrumented in place.

A traced function is instrumented in place (:mod:`otrace.tracing.instrument`): the program
keeps the same function object and sees no wrapper.  A wrapper is used only where that is
impossible -- no source (``exec``'d code, a ``.pyc`` without its ``.py``), source that no
longer matches the running code, a lambda.  There the program can tell: the attribute holds
another object (``is`` and pickling by reference differ), ``inspect`` must follow
``__wrapped__``, the wrapper's frame is on the stack while the function runs and keeps the
arguments alive, and generator / async wrappers check arguments only when first iterated.
The trace's warnings name every function traced with a wrapper and why.

One wrapper template per kind, chosen from the original's code flags (:func:`make_wrapper`):

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
Its code objects are registered with :func:`otrace.contexts.frames.hide_code`, so trace
contexts never show wrapper frames.  A condition's tests are inlined into the sync wrapper's
code by :mod:`otrace.tracing.wrapper_inline`, which runs with this module's globals (the
hooks below); :mod:`otrace.tracing.install` puts wrappers where the program finds them.

The four templates are hot-path code kept side by side here so they stay alike.  They run on
whatever thread calls the traced function; :func:`make_wrapper` under the registry lock.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any

from otrace.contexts.frames import hide_code
from otrace.tracing import handlers, instrument
from otrace.tracing.engine import Site
from otrace.tracing.instrument import busy, enter, leave, record_exception
from otrace.tracing.wrapper_inline import inner_codes, retuner, value_retuner


# What the wrappers call: the handlers, skipped while this thread records (a traced function
# called by recording runs untraced), exceptions through instrument.py's leave filter.
def on_call(site: Site, spec: Any, args: tuple, kwargs: dict) -> Any:
    if not enter():
        return None
    try:
        return handlers.on_call(site, spec, args, kwargs, sys._getframe(1))
    finally:
        leave()


def on_return(call: Any, result: Any) -> Any:
    if not enter():
        return None
    try:
        return handlers.on_return(call, result)
    finally:
        leave()


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


def _make_generator(site: Site, func: Callable) -> Callable:
    params = site.tracer.params  # captured at wrap time: no lookup per call

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = site.state
        if state is None:  # not traced, or trace_active off
            return (yield from func(*args, **kwargs))
        spec, quick, c = state
        if c is not None:  # a return-only condition: c = (0, value test), see value_retuner
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
        if c is not None:  # a return-only condition: c = (0, value test), see value_retuner
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


for _factory in (_make_sync, _make_generator, _make_coroutine, _make_asyncgen):
    hide_code(*inner_codes(_factory))


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
        site.retune = retuner(site, wrapper)
    elif factory is not _make_asyncgen:  # (an async generator returns nothing to test)
        site.retune = value_retuner
    functools.update_wrapper(wrapper, func)
    wrapper._otrace_orig_function = func  # type: ignore[attr-defined]
    wrapper._otrace_site = site  # type: ignore[attr-defined]
    site.wrapper = wrapper
    return wrapper


def is_wrapper(obj: Any) -> bool:
    return callable(obj) and getattr(obj, "_otrace_site", None) is not None
