"""Tracing one attribute of a class or module: in place when possible, else a wrapper.

:func:`wrap_raw` traces a raw attribute value: each Python function in it is instrumented in
place (:mod:`otrace.tracing.instrument`) or, where that is impossible, gets a wrapper
(:mod:`otrace.tracing.wrappers`).  For classes the raw ``__dict__`` entry decides: a function
is an instance method, ``classmethod`` and ``staticmethod`` are re-decorated around the
wrapper, a ``property`` gets its getter, setter and deleter wrapped; ``functools.lru_cache``
and ``cached_property`` are traced only in place.  A :class:`Patch` rebinds the attribute;
only the attribute is rebound: references taken earlier keep calling the original.

Thread rules: install/uninstall under the engine's registry lock (any thread).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from otrace.errors import TraceError
from otrace.tracing import instrument
from otrace.tracing.engine import Site
from otrace.tracing.registry import Tracer
from otrace.tracing.wrappers import make_wrapper


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
