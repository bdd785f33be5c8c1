"""Live patching: run new source for a function or method of the running program, and undo it.

A patch is made **in place** when it can be: the function object that really runs (found
below any tracing wrapper or ``functools.wraps`` decorator, through ``_otrace_orig_function``
and ``__wrapped__``) gets the new ``__code__``, ``__defaults__``, ``__kwdefaults__``,
``__doc__`` and ``__annotations__``.  Every reference to that function -- the attribute, a
tracing wrapper around it, a stored callback, a ``from m import f`` alias -- then runs the
new code, and tracing carries on untouched.  Unpatching puts the saved originals back.

The attribute is **rebound** instead (a new function object set on the parent, wrapped in
``classmethod``/``staticmethod`` like the original) when the swap is impossible:

* the new code's free variables differ from the original's (a closure variable used or no
  longer used, ``super()`` added or removed);
* the method is inherited: ``Cart.inherited`` defined by ``Base`` is patched on ``Cart``, so
  ``Base`` and its other subclasses keep the old code;
* the attribute does not exist yet (added by the patch; unpatching deletes it);
* the original is not a Python function.

A rebound patch affects only the attribute, and a tracing wrapper stored there is replaced.

The new source is compiled in the globals of the function's own module; for a method, inside a
class body named like the class (so ``self.__private`` names mangle as in the original) and
with the original's closure cells (``super()`` works).  The patched function carries
``_otrace_unpatched_function`` (a function running the original code, so the patch can wrap
it), ``_otrace_patch_source`` (the source text) and ``_otrace_patch_parent``.

Threads: :func:`patch` and :func:`unpatch` may be called from any thread.  Compilation runs
in the caller's thread; the change itself runs through ``eventloop_callback`` (a thread-safe
"run this on the program's loop" function) when one is given, and the caller waits for it,
so a request on the loop never sees half a patch.
"""

from __future__ import annotations
import __future__

import ast
import contextlib
import inspect
import itertools
import linecache
import sys
import textwrap
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from otrace import _default, holds
from otrace.errors import PatchError
from otrace.holds import HoldTable
from otrace.tracing import instrument

EventloopCallback = Callable[[Callable[[], Any]], Any]

PATCH_ATTRS = ("_otrace_unpatched_function", "_otrace_patch_source", "_otrace_patch_parent")
_KIND_FLAGS = (
    inspect.CO_GENERATOR
    | inspect.CO_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
    | inspect.CO_ITERABLE_COROUTINE
)
_SCOPE = "__otrace_patch_scope__"
_MISSING = object()


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


class PatchTable:
    """The live patches of one runtime (``rt.patches``), by name.

    ``lock`` guards ``patches`` and ``busy`` for a moment only; it is never held while
    waiting for the event loop (the loop thread may need it to install).  ``busy`` holds the
    names being patched or unpatched right now: one name is changed by one caller at a time,
    from its check to its install.
    """

    def __init__(self, holds: HoldTable | None = None) -> None:
        self.holds = holds
        self.lock = threading.RLock()
        self.patches: dict[str, Patch] = {}
        self.busy: set[str] = set()

    @contextlib.contextmanager
    def reserved(self, name: str) -> Iterator[None]:
        """Own ``name`` for one patch/unpatch; PatchError if another caller is changing it."""
        with self.lock:
            if name in self.busy:
                raise PatchError(
                    f"{name} is being patched or unpatched by another session; try again"
                )
            self.busy.add(name)
        try:
            yield
        finally:
            with self.lock:
                self.busy.discard(name)

    def get(self, name: str) -> Patch | None:
        return self.patches.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.patches

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.patches))


def _table(table: PatchTable | None) -> PatchTable:
    return table if table is not None else _default.get().patches


# Numbers the pseudo file names of compiled patches; unique per process, not per runtime
# (itertools.count is atomic under the GIL, so it needs no lock and carries no other state).
_serial = itertools.count(1)


# -- finding things ---------------------------------------------------------------------
def _get(parent: Any, attr: str, default: Any = _MISSING) -> Any:
    if isinstance(parent, dict):
        return parent.get(attr, default)
    return vars(parent).get(attr, default)


def _set(parent: Any, attr: str, value: Any) -> None:
    if isinstance(parent, dict):
        parent[attr] = value
    else:
        setattr(parent, attr, value)


def _delete(parent: Any, attr: str) -> None:
    if isinstance(parent, dict):
        parent.pop(attr, None)
    elif attr in vars(parent):
        delattr(parent, attr)


def chain(obj: Any) -> list[Any]:
    """``obj`` and what it wraps (tracing wrappers, ``functools.wraps`` decorators), outermost first."""
    if isinstance(obj, (classmethod, staticmethod)):
        obj = obj.__func__
    out: list[Any] = []
    seen: set[int] = set()
    while obj is not None and id(obj) not in seen and callable(obj):
        out.append(obj)
        seen.add(id(obj))
        d = getattr(obj, "__dict__", {})
        obj = d.get("_otrace_orig_function") or d.get("__wrapped__")
    return out


def real_function(obj: Any) -> types.FunctionType | None:
    """The innermost Python function below wrappers, or None."""
    funcs = [f for f in chain(obj) if isinstance(f, types.FunctionType)]
    return funcs[-1] if funcs else None


def original(func: Any) -> Callable[..., Any]:
    """What ``func`` (a patched function, a wrapper around one, or a bound method) ran before patching."""
    for f in chain(getattr(func, "__func__", func)):
        orig = getattr(f, "__dict__", {}).get("_otrace_unpatched_function")
        if orig is not None:
            return orig
    raise PatchError(f"{getattr(func, '__qualname__', func)!r} is not patched")


def _module_globals(parent: Any, real: types.FunctionType | None) -> dict[str, Any]:
    if real is not None:
        return real.__globals__
    if isinstance(parent, dict):
        return parent
    if isinstance(parent, types.ModuleType):
        return vars(parent)
    module = sys.modules.get(getattr(parent, "__module__", ""))
    if module is None:
        raise PatchError(f"Cannot find the module of {parent!r}")
    return vars(module)


# -- compiling ----------------------------------------------------------------------------
def _future_flags(text_tree: ast.Module, like: types.FunctionType | None) -> int:
    flags = 0
    for name in __future__.all_feature_names:
        feature = getattr(__future__, name)
        if like is not None and like.__code__.co_flags & feature.compiler_flag:
            flags |= feature.compiler_flag
    for node in text_tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            for alias in node.names:
                flags |= getattr(__future__, alias.name).compiler_flag
    return flags


def compile_patch(
    source: str,
    name: str,
    attr: str,
    globals_: dict[str, Any],
    *,
    cls: type | None = None,
    like: types.FunctionType | None = None,
) -> Any:
    """Run ``source`` and return what it defines as ``attr`` (raw: may be a classmethod).

    For a method (``cls`` given) the text is a class body of a class named like ``cls``;
    names of ``like``'s closure are closure names of the new code too.
    """
    text = textwrap.dedent(source).expandtabs()
    filename = f"<otrace patch {name} #{next(_serial)}>"
    try:
        tree = ast.parse(text, filename)
    except SyntaxError as exc:
        raise PatchError(
            f"Patch for {name} does not compile: {exc.msg} (line {exc.lineno})"
        ) from None
    flags = _future_flags(tree, like)
    body = [
        n for n in tree.body if not (isinstance(n, ast.ImportFrom) and n.module == "__future__")
    ]
    if not body:
        raise PatchError(f"Patch for {name} is empty")
    freevars = [v for v in (like.__code__.co_freevars if like else ()) if v != "__class__"]
    lines = [f"def {_SCOPE}():"]
    lines += [f"    {v} = None" for v in freevars]
    if cls is not None:
        lines += [f"    class {cls.__name__}:", "        pass", f"    return {cls.__name__}"]
    else:
        lines += ["    pass", "    return locals()"]
    scope = ast.parse("\n".join(lines))
    fdef = scope.body[0]
    assert isinstance(fdef, ast.FunctionDef)
    if cls is not None:
        klass = fdef.body[-2]
        assert isinstance(klass, ast.ClassDef)
        klass.body = body
    else:
        fdef.body[-2:-1] = body
    try:
        code = compile(scope, filename, "exec", flags=flags, dont_inherit=True)
    except SyntaxError as exc:
        raise PatchError(
            f"Patch for {name} does not compile: {exc.msg} (line {exc.lineno})"
        ) from None
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    scratch: dict[str, Any] = {}
    try:
        exec(code, globals_, scratch)
        made = scratch[_SCOPE]()
    except Exception as exc:
        raise PatchError(f"Patch for {name} failed: {type(exc).__name__}: {exc}") from None
    names = (
        dict(vars(made))
        if cls is not None
        else {k: v for k, v in made.items() if k not in freevars}
    )
    obj = names.get(attr)
    if obj is None or not inspect.isfunction(real_function(obj)):
        found = sorted(k for k in names if not k.startswith("__"))
        plain = name.rsplit(".", 1)[-1]
        raise PatchError(f"Patch source must define 'def {plain}', but found {found or 'nothing'}")
    return obj


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
    the new code (its signature may have changed) by :func:`instrument.set_code`."""
    for key, value in values.items():
        if key != "__code__":
            setattr(func, key, value)
    instrument.set_code(func, values["__code__"])


def _install(p: Patch, table: PatchTable) -> None:
    if p.mode == "in place":
        _set_attrs(p.function, p._saved_new)
        _mark(chain(_get(p.parent, p.attr)) + [p.function], p)
    else:
        _mark([p.function], p)
        _set(p.parent, p.attr, p._new_attr)
    with table.lock:
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
    with table.lock:
        if table.patches.get(p.name) is p:
            del table.patches[p.name]


def run_on_loop(
    func: Callable[[], Any],
    eventloop_callback: EventloopCallback | None,
    timeout: float = 10.0,
    table: PatchTable | None = None,
) -> Any:
    """Make the change on the program's loop (``eventloop_callback``, else the process-wide
    door of :mod:`otrace.holds`; directly without either) and wait for it.

    PatchError if the loop does not start it within ``timeout`` seconds (nothing changed), or
    started it but did not finish within another ``timeout`` (then it may still complete).
    The caller holds no lock while it waits.
    """
    try:
        door = _table(table).holds
        if door is None:
            return holds.call_on_loop(func, timeout, eventloop_callback)
        return door.call_on_loop(func, timeout, eventloop_callback)
    except holds.LoopBusy:
        raise PatchError(
            f"The event loop started the change but did not finish it within {timeout:g}s; "
            "see ls /osh/patches once it has"
        ) from None
    except TimeoutError:
        raise PatchError(
            f"The event loop did not run the change within {timeout:g}s; nothing changed"
        ) from None


def patch(
    parent: Any,
    attr: str,
    source: str,
    *,
    name: str | None = None,
    repatch: bool = False,
    eventloop_callback: EventloopCallback | None = None,
    timeout: float = 10.0,
    table: PatchTable | None = None,
) -> Patch:
    """Patch ``parent.attr`` (module, class or globals dict) with the function ``source`` defines.

    ``name`` is the patch's name in /osh/patches (default ``Class.attr`` or ``attr``).  An
    already patched name needs ``repatch=True``; the original code stays the one from before
    the first patch.  PatchError (nothing changed) if the source does not compile, does not
    define the function, or raises.  Any thread.
    """
    table = _table(table)
    if name is None:
        name = _qualname(parent, attr) if inspect.isclass(parent) else attr
    with table.reserved(name):  # check, prepare and install as one step for this name
        with table.lock:
            old = table.patches.get(name)
        if old is not None and not repatch:
            raise PatchError(
                f"{name} is already patched; use 'edit -f' (repatch) to patch it again"
            )
        if old is None:
            p = _prepare(parent, attr, source, name)
            run_on_loop(lambda: _install(p, table), eventloop_callback, timeout, table)
            return p

        def swap() -> Patch:  # one step on the loop: no request sees the unpatched code
            _uninstall(old, table)
            try:
                new = _prepare(parent, attr, source, name)
            except BaseException:
                _install(old, table)
                raise
            _install(new, table)
            return new

        return run_on_loop(swap, eventloop_callback, timeout, table)


def unpatch(
    name: str,
    *,
    eventloop_callback: EventloopCallback | None = None,
    timeout: float = 10.0,
    table: PatchTable | None = None,
) -> Patch:
    """Undo the patch called ``name``: the original code (or no attribute) again.  Any thread."""
    table = _table(table)
    with table.reserved(name):
        with table.lock:
            p = table.patches.get(name)
        if p is None:
            raise PatchError(f"Unpatching failed for {name}: not patched")
        run_on_loop(lambda: _uninstall(p, table), eventloop_callback, timeout, table)
    return p


def unpatch_all(
    *, eventloop_callback: EventloopCallback | None = None, table: PatchTable | None = None
) -> list[str]:
    """Undo every patch; the names undone.  Any thread."""
    table = _table(table)
    names = list(table.patches)
    for n in reversed(names):
        unpatch(n, eventloop_callback=eventloop_callback, table=table)
    return names
