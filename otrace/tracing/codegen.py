"""Building instrumented code: a function's source compiled again, at its own lines and columns.

Used by :mod:`otrace.tracing.instrument` (which says what the hooks do; the hooks themselves
are added by :mod:`otrace.tracing.rewrite`).  The source block comes from ``linecache`` at the
function's first line; it is parsed where its lines and columns are the original's, placed in
a module that gives it the same free variables, class name (for private name mangling) and
imported names (the compiler treats those differently), compiled without running anything,
and the function's code object is taken out of the result.  ``SITE_CONST`` and
``PROBE_CONST``, the string constants the hooks are written with, are replaced by the real
objects in the finished code's constants (:func:`fill`).

Pure functions of their arguments (plus a cache of each module's imported names); any thread.
"""

from __future__ import annotations
import __future__

import ast
import inspect
import linecache
import sys
from types import CodeType, FunctionType
from typing import Any

from otrace.errors import TraceError
from otrace.tracing.rewrite import PROBE_CONST, SITE_CONST, locate

_SCOPE = "__otrace_scope__"
_COMPARED = (
    "co_code",
    "co_names",
    "co_varnames",
    "co_freevars",
    "co_cellvars",
    "co_argcount",
    "co_posonlyargcount",
    "co_kwonlyargcount",
)
CO_NESTED = 0x10
_TYPE_PARAMS: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}


def _future_flags(code: CodeType) -> int:
    flags = 0
    for name in __future__.all_feature_names:
        feature = getattr(__future__, name)
        if code.co_flags & feature.compiler_flag:
            flags |= feature.compiler_flag
    return flags


def function_source(func: FunctionType) -> tuple[str, int]:
    """The function's source block and the line offset to parse it at (TraceError if none)."""
    code = func.__code__
    if code.co_name == "<lambda>":
        raise TraceError("a lambda has no statement to instrument")
    lines = linecache.getlines(code.co_filename, func.__globals__)
    if not lines or code.co_firstlineno > len(lines):
        raise TraceError("its source is not available")
    try:
        block = inspect.getblock(lines[code.co_firstlineno - 1 :])
    except Exception as exc:
        raise TraceError(f"its source could not be read ({type(exc).__name__})") from None
    text = "".join(block)
    offset = code.co_firstlineno - 1
    if text[:1].isspace():
        # keep the columns (tracebacks point at them): parse inside an if block
        text, offset = "if 1:\n" + text, offset - 1
    return text, offset


def function_node(
    func: FunctionType, source: tuple[str, int]
) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The function's definition parsed from ``source``, at its real lines and columns."""
    code = func.__code__
    text, offset = source
    try:
        tree = ast.parse(text, code.co_filename)
    except SyntaxError:
        raise TraceError("its source does not parse (edited on disk?)") from None
    ast.increment_lineno(tree, offset)
    node: Any = tree.body[0] if tree.body else None
    if isinstance(node, ast.If):
        node = node.body[0] if node.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name != code.co_name:
        raise TraceError("its source does not define it (edited on disk?)")
    return node


def module_for(
    func: FunctionType, node: ast.FunctionDef | ast.AsyncFunctionDef
) -> tuple[ast.Module, bool]:
    """A module placing ``node`` where its free variables and class name resolve as before."""
    code = func.__code__
    parts = code.co_qualname.split(".")
    owner = parts[-2] if len(parts) > 1 and parts[-2] != "<locals>" else None
    stmt: ast.stmt = node
    if owner is not None:
        stmt = ast.ClassDef(
            name=owner, bases=[], keywords=[], body=[node], decorator_list=[], **_TYPE_PARAMS
        )
    free = [v for v in code.co_freevars if v != "__class__"]
    if free:
        body: list[ast.stmt] = [
            ast.Assign(targets=[ast.Name(v, ast.Store())], value=ast.Constant(None)) for v in free
        ]
        body.append(stmt)
        scope = ast.FunctionDef(
            name=_SCOPE,
            args=ast.arguments([], [], None, [], [], None, []),
            body=body,
            decorator_list=[],
            returns=None,
            **_TYPE_PARAMS,
        )
        stmt = scope
    # The compiler treats names the module imports differently (no LOAD_METHOD on them), so
    # the same names are marked imported here (these statements are never run).
    marks: list[ast.stmt] = [
        ast.Import([ast.alias("_otrace_never_imported", name)])
        for name in sorted(_module_imports(code.co_filename, func.__globals__))
    ]
    for mark in marks:
        locate(mark, node)
    if stmt is not node:
        locate(stmt, node)
    module = ast.Module(body=[*marks, stmt], type_ignores=[])
    return module, bool(free)


_imports: dict[str, tuple[int, frozenset[str]]] = {}


def _module_imports(filename: str, module_globals: dict) -> frozenset[str]:
    """Names bound by ``import`` at the top level of the module in ``filename``."""
    lines = linecache.getlines(filename, module_globals)
    key = hash(tuple(lines))
    cached = _imports.get(filename)
    if cached is not None and cached[0] == key:
        return cached[1]
    names: set[str] = set()
    try:
        tree = ast.parse("".join(lines), filename)
    except SyntaxError:
        tree = ast.Module(body=[], type_ignores=[])
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name.partition(".")[0]) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update((a.asname or a.name) for a in node.names if a.name != "*")
        else:
            todo.extend(ast.iter_child_nodes(node))
    result = frozenset(names)
    _imports[filename] = (key, result)
    return result


def _find_code(code: CodeType, name: str, firstlineno: int) -> CodeType | None:
    for const in code.co_consts:
        if isinstance(const, CodeType):
            if const.co_name == name and const.co_firstlineno == firstlineno:
                return const
            found = _find_code(const, name, firstlineno)
            if found is not None:
                return found
    return None


def compile_at(func: FunctionType, module: ast.Module) -> CodeType:
    code = func.__code__
    compiled = compile(
        module, code.co_filename, "exec", flags=_future_flags(code), dont_inherit=True
    )
    found = _find_code(compiled, code.co_name, code.co_firstlineno)
    if found is None:  # pragma: no cover - the module holds the definition
        raise TraceError("its code was not found after compiling its source")
    return found


def requalify(code: CodeType, old: str, new: str, flags: int | None = None) -> CodeType:
    """Give ``code`` (and the code nested in it) the original's qualified names."""
    consts = tuple(requalify(c, old, new) if isinstance(c, CodeType) else c for c in code.co_consts)
    qual = code.co_qualname
    if qual == old or qual.startswith(old + "."):
        qual = new + qual[len(old) :]
    if flags is None:
        return code.replace(co_consts=consts, co_qualname=qual)
    return code.replace(co_consts=consts, co_qualname=qual, co_flags=flags)


def same_code(a: CodeType, b: CodeType) -> bool:
    if any(getattr(a, f) != getattr(b, f) for f in _COMPARED):
        return False
    if (a.co_flags ^ b.co_flags) & ~CO_NESTED:
        return False
    ca = [c for c in a.co_consts if not isinstance(c, CodeType)]
    cb = [c for c in b.co_consts if not isinstance(c, CodeType)]
    return ca == cb


def fill(code: CodeType, site: Any, probe: Any) -> CodeType:
    consts = tuple(
        site if c == SITE_CONST else probe if c == PROBE_CONST else c for c in code.co_consts
    )
    return code.replace(co_consts=consts)
