"""Installing a compiled live patch in place or by rebinding, and taking it out again.

A patch is made **in place** when it can be: the function object that really runs gets the
new ``__code__``, ``__defaults__``, ``__kwdefaults__``, ``__doc__`` and ``__annotations__``
(see :mod:`otrace.tracing.patching` for the full rules); otherwise the attribute is
**rebound** to a new function object.  :func:`_prepare` compiles and decides without changing
the program; :func:`_install` / :func:`_uninstall` make the change and must run on the
program's event loop (the caller in :mod:`otrace.tracing.patching` arranges that).
"""

from __future__ import annotations

import inspect
import textwrap
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from otrace.errors import PatchError
from otrace.tracing import instrument
from otrace.tracing.patch_compile import (
    _MISSING,
    _delete,
    _get,
    _module_globals,
    _set,
    chain,
    compile_patch,
    real_function,
)

if TYPE_CHECKING:
    from otrace.tracing.patching import PatchTable

PATCH_ATTRS = ("_otrace_unpatched_function", "_otrace_patch_source", "_otrace_patch_parent")
_KIND_FLAGS = (
    inspect.CO_GENERATOR
    | inspect.CO_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
    | inspect.CO_ITERABLE_COROUTINE
)


@dataclass
class Patch:
    """One active patch.

    ``function`` is the function now running the patch's code (the original object itself
    when patched in place); ``original`` runs the original code (None if the patch added the
    attribute).  ``mode`` is ``"in place"`` or ``"rebound"``; ``note`` says why it was
    rebound.
    """

    name: str
    parent: Any
    attr: str
    function: types.FunctionType
    original: types.FunctionType | None
    source: str
    mode: str
    note: str = ""
    _saved: dict[str, Any] = field(default_factory=dict, repr=False)
    _saved_new: dict[str, Any] = field(default_factory=dict, repr=False)
    _old_attr: Any = field(default=_MISSING, repr=False)
    _new_attr: Any = field(default=None, repr=False)


# -- installing ---------------------------------------------------------------------------
def _copy_function(f: types.FunctionType) -> types.FunctionType:
    code = instrument.base_code(f)  # a traced function's own code, not its instrumented one
    new = types.FunctionType(code, f.__globals__, f.__name__, f.__defaults__, f.__closure__)
    new.__kwdefaults__ = f.__kwdefaults__
    new.__qualname__ = f.__qualname__
    new.__module__ = f.__module__
    new.__doc__ = f.__doc__
    new.__annotations__ = dict(f.__annotations__)
    new.__dict__.update({k: v for k, v in f.__dict__.items() if k not in PATCH_ATTRS})
    return new


def _mark(funcs: list[Any], p: Patch) -> None:
    values = (p.original, p.source, p.parent)
    for f in funcs:
        for key, value in zip(PATCH_ATTRS, values, strict=True):
            try:
                setattr(f, key, value)
            except (AttributeError, TypeError):
                break


def _unmark(funcs: list[Any]) -> None:
    for f in funcs:
        d = getattr(f, "__dict__", None)
        if isinstance(d, dict):
            for key in PATCH_ATTRS:
                d.pop(key, None)


def _qualname(parent: Any, fname: str) -> str:
    return f"{parent.__qualname__}.{fname}" if inspect.isclass(parent) else fname


def _prepare(parent: Any, attr: str, source: str, name: str) -> Patch:
    """Compile and decide how to install; nothing in the program changes yet."""
    current = _get(parent, attr)
    inherited = _MISSING
    if current is _MISSING and inspect.isclass(parent):
        for klass in parent.__mro__[1:]:
            if attr in vars(klass):
                inherited = vars(klass)[attr]
                break
    before = current if current is not _MISSING else inherited
    if isinstance(before, property):
        raise PatchError(f"{name} is a property; patch its getter function instead")
    if before is not _MISSING and inspect.isclass(before):
        raise PatchError("Class patching not yet implemented; patch methods individually")
    real = real_function(before) if before is not _MISSING else None
    if before is not _MISSING and real is None:
        raise PatchError(f"{name} is not a Python function or method")
    cls = parent if inspect.isclass(parent) else None
    obj = compile_patch(source, name, attr, _module_globals(parent, real), cls=cls, like=real)
    fn = real_function(obj)
    assert fn is not None
    mode, note = "in place", ""
    if current is _MISSING:
        mode = "rebound"
        note = (
            "inherited method: set on the named class, the base class keeps its code"
            if inherited is not _MISSING
            else "new attribute"
        )
    elif fn.__code__.co_freevars != real.__code__.co_freevars:  # type: ignore[union-attr]
        mode, note = (
            "rebound",
            "free variables changed (closure or super()), so only the attribute is rebound",
        )
    if real is not None and (fn.__code__.co_flags ^ real.__code__.co_flags) & _KIND_FLAGS:
        raise PatchError(
            f"Patch for {name} changes the kind of function (generator/async); not supported"
        )
    qual = real.__code__.co_qualname if real is not None else _qualname(parent, fn.__name__)
    code = fn.__code__.replace(co_qualname=qual)
    p = Patch(
        name,
        parent,
        attr,
        fn,
        _copy_function(real) if real is not None else None,
        textwrap.dedent(source),
        mode,
        note,
    )
    if mode == "in place":
        assert real is not None
        p.function = real
        p._saved = {
            "__code__": instrument.base_code(real),
            "__defaults__": real.__defaults__,
            "__kwdefaults__": real.__kwdefaults__,
            "__doc__": real.__doc__,
            "__annotations__": dict(real.__annotations__),
        }
        p._saved_new = {
            "__code__": code,
            "__defaults__": fn.__defaults__,
            "__kwdefaults__": fn.__kwdefaults__,
            "__doc__": fn.__doc__,
            "__annotations__": dict(fn.__annotations__),
        }
        return p
    cells = []
    old_free = real.__code__.co_freevars if real is not None else ()
    for i, var in enumerate(code.co_freevars):
        if var in old_free:
            cells.append(real.__closure__[old_free.index(var)])  # type: ignore[index, union-attr]
        elif var == "__class__" and cls is not None:
            cells.append(types.CellType(cls))
        else:
            cells.append(fn.__closure__[i])  # type: ignore[index]
    new = types.FunctionType(
        code, fn.__globals__, fn.__name__, fn.__defaults__, tuple(cells) or None
    )
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__doc__ = fn.__doc__
    new.__annotations__ = dict(fn.__annotations__)
    new.__module__ = real.__module__ if real is not None else fn.__module__
    new.__qualname__ = qual
    shape = before if before is not _MISSING else obj
    p.function = new
    p._old_attr = current
    p._new_attr = (
        classmethod(new)
        if isinstance(shape, classmethod)
        else staticmethod(new)
        if isinstance(shape, staticmethod)
        else new
    )
    return p


def _set_attrs(func: types.FunctionType, values: dict[str, Any]) -> None:
    """Set the saved attributes, the code last: a traced function is instrumented again for
    the new code (its signature may have changed) by :func:`instrument.set_code` -- which
    sets them all under the registry's lock, or none (TraceError: the registry is busy)."""
    others = {key: value for key, value in values.items() if key != "__code__"}
    instrument.set_code(func, values["__code__"], attrs=others)


def _install(p: Patch, table: PatchTable) -> None:
    if p.mode == "in place":
        _set_attrs(p.function, p._saved_new)
        _mark(chain(_get(p.parent, p.attr)) + [p.function], p)
    else:
        _mark([p.function], p)
        _set(p.parent, p.attr, p._new_attr)
    with table.lock:  # call-free (see PatchTable)
        table.patches[p.name] = p


def _uninstall(p: Patch, table: PatchTable) -> None:
    if p.mode == "in place":
        _set_attrs(p.function, p._saved)
        current = _get(p.parent, p.attr, None)
        _unmark((chain(current) if current is not None else []) + [p.function])
    else:
        _unmark([p.function])
        if p._old_attr is _MISSING:
            _delete(p.parent, p.attr)
        else:
            _set(p.parent, p.attr, p._old_attr)
    patches = table.patches
    with table.lock:  # call-free (see PatchTable)
        if p.name in patches and patches[p.name] is p:
            del patches[p.name]
