"""Compiling a live patch: find the function that really runs, and compile new source for it.

The new source is compiled in the globals of the function's own module; for a method, inside a
class body named like the class (so ``self.__private`` names mangle as in the original) and
with the original's closure cells' names as closure names (``super()`` works).  Nothing in the
program changes here; :mod:`otrace.tracing.patch_install` decides how the result is installed.

Threads: everything here runs in the caller's thread and holds no lock.
"""

from __future__ import annotations
import __future__

import ast
import inspect
import itertools
import linecache
import sys
import textwrap
import types
from collections.abc import Callable
from typing import Any

from otrace.errors import PatchError

_SCOPE = "__otrace_patch_scope__"
_MISSING = object()

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
