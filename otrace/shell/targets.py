"""Naming things to trace, patch or view: from path text to (parent, attribute, object).

Tracing and patching rebind an attribute on its parent (a module or a class), so a target
is resolved to that parent, the attribute's name there, and the object.  A method named
through a subclass that only inherits it is found on the class that defines it (the patch or
trace goes there, and the name says so: ``Base.inherited``) -- the original crashed here.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any

from otrace.errors import PathError, UsageError


@dataclass(frozen=True)
class Target:
    parent: Any  # module or class holding the attribute
    attr: str  # the attribute's name in parent.__dict__ (mangled for __private)
    obj: Any  # what the attribute holds (the raw __dict__ entry for classes)
    name: str  # Class.method, function, or Class

    @property
    def is_class(self) -> bool:
        return issubclass(type(self.obj), type)  # type(): __class__ may raise


def _is(value: Any, cls: type | tuple[type, ...]) -> bool:
    """``isinstance`` by the real type: a program's ``__class__`` is never asked."""
    return issubclass(type(value), cls)


def _defining_class(cls: type, attr: str) -> type | None:
    for klass in cls.__mro__:
        if attr in vars(klass):
            return klass
    return None


def resolve_target(sh, text: str) -> Target:
    """Resolve ``text`` (dotted or slashed, relative to the cwd, or /osh/...) to a Target."""
    if not text:
        raise UsageError("no target given")
    try:
        res = sh.tree.resolve(sh.tree.parts(text, sh.cwd))
    except PathError:
        raise PathError(f"Invalid class/method/function: {text}") from None
    attr = res.name
    parent = res.parent
    obj = res.value
    if _is(obj, types.MethodType) and not _is(parent, type):  # type(): no program code
        # a bound method reached through an instance: trace it on the class
        owner = obj.__self__ if _is(obj.__self__, type) else type(obj.__self__)
        parent, attr = owner, obj.__func__.__name__
    if _is(parent, type):
        mangled = attr
        if attr.startswith("__") and not attr.endswith("__"):
            mangled = f"_{parent.__name__.lstrip('_')}{attr}"
        for candidate in (attr, mangled):
            defining = _defining_class(parent, candidate)
            if defining is not None:
                return Target(
                    defining, candidate, vars(defining)[candidate], f"{defining.__name__}.{attr}"
                )
        raise PathError(f"{text}: not an attribute defined by {parent.__name__} or its bases")
    if _is(parent, dict) and res.parts[:2] == ("osh", "globals") and len(res.parts) == 3:
        module = sys.modules.get(parent.get("__name__", ""))
        if module is not None and getattr(module, "__dict__", None) is parent:
            parent = module
    if _is(parent, (types.ModuleType, dict)):
        return Target(parent, attr, obj, attr)
    raise PathError(f"{text}: not a function or method of a module or class")
