"""Building instrumented code: a function's source compiled again with the trace hooks added.

Used by :mod:`otrace.tracing.instrument` (which says what the hooks do).  The source block
comes from ``linecache`` at the function's first line; it is parsed where its lines and
columns are the original's, placed in a module that gives it the same free variables, class
name (for private name mangling) and imported names (the compiler treats those differently),
compiled without running anything, and the function's code object is taken out of the
result.  ``SITE_CONST`` and ``PROBE_CONST`` are string constants the hooks are written with,
replaced by the real objects in the finished code's constants (:func:`fill`).

Pure functions of their arguments (plus a cache of each module's imported names); any thread.
"""

from __future__ import annotations
import __future__

import ast
import copy
import inspect
import linecache
import sys
from types import CodeType, FunctionType
from typing import Any

from otrace.errors import TraceError
from otrace.tracing.conditions import And, ArgTest, Predicate

SITE_CONST = "__otrace_site__"
PROBE_CONST = "__otrace_probe__"
CALL_LOCAL = "_otrace_call_"
VALUE_LOCAL = "_otrace_value_"
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


# -- building code -------------------------------------------------------------------------


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
        _locate(mark, node)
    if stmt is not node:
        _locate(stmt, node)
    module = ast.Module(body=[*marks, stmt], type_ignores=[])
    return module, bool(free)


def _locate(new: ast.AST, like: ast.AST) -> None:
    """Give ``new`` and its children without a location ``like``'s (not the whole tree:
    ``ast.fix_missing_locations`` over every node cost seconds for a few hundred functions)."""
    todo = [new]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.stmt, ast.expr, ast.excepthandler, ast.arg, ast.alias)):
            if getattr(node, "lineno", None) is not None and node is not new:
                continue  # an original node: it and its children are located
            if getattr(node, "lineno", None) is None:
                ast.copy_location(node, like)
        todo.extend(ast.iter_child_nodes(node))


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


# -- the transformations ---------------------------------------------------------------------


def _const(name: str) -> ast.Constant:
    return ast.Constant(name)


def _probe(method: str, *args: ast.expr) -> ast.Call:
    return ast.Call(ast.Attribute(_const(PROBE_CONST), method, ast.Load()), list(args), [])


def _load(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


class _Returns(ast.NodeTransformer):
    """``return X`` -> ``return X if _otrace_call_ is None else PROBE.ret(_otrace_call_, X)``."""

    def __init__(
        self,
        is_async: bool,
        is_asyncgen: bool,
        late: ast.expr | None = None,
        late_args: ast.expr | None = None,
    ) -> None:
        self.is_async = is_async
        self.is_asyncgen = is_asyncgen
        self.late = late
        # what PROBE.late gets as the arguments: _otrace_call_ (kept at entry), or the
        # parameters read at return when the body never rebinds them (see instrumented_node)
        self.late_args = late_args if late_args is not None else _load(CALL_LOCAL)

    def visit_FunctionDef(self, node: ast.AST) -> ast.AST:
        return node  # nested scopes keep their own returns

    visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = visit_FunctionDef

    def visit_Return(self, node: ast.Return) -> Any:
        if self.late is not None:
            return self._late_return(node)
        if self.is_asyncgen:  # a bare return; no value allowed
            hook = ast.If(
                ast.Compare(_load(CALL_LOCAL), [ast.IsNot()], [ast.Constant(None)]),
                [ast.Expr(_probe("ret", _load(CALL_LOCAL), ast.Constant(None)))],
                [],
            )
            _locate(hook, node)
            return [hook, node]
        value = node.value if node.value is not None else ast.Constant(None)
        traced: ast.expr = _probe(
            "ret_async" if self.is_async else "ret", _load(CALL_LOCAL), copy.deepcopy(value)
        )
        if self.is_async:
            traced = ast.Await(traced)
        node.value = ast.IfExp(
            ast.Compare(_load(CALL_LOCAL), [ast.Is()], [ast.Constant(None)]), value, traced
        )
        like = value if getattr(value, "lineno", None) is not None else node
        _locate(node.value, like)
        return node

    def _late_return(self, node: ast.Return) -> list[ast.stmt]:
        """A return-only condition, tested on the value before anything is called::

        if _otrace_call_ is not None:
            _otrace_value_ = X
            try:
                if not (TESTS):
                    return _otrace_value_
            except Exception:
                pass  # the full evaluation records the error
            [await] PROBE.late(_otrace_call_ or the parameters, _otrace_value_)
            return _otrace_value_
        return X
        """
        assert self.late is not None
        value = node.value if node.value is not None else ast.Constant(None)
        back: ast.expr | None = None if self.is_asyncgen else _load(VALUE_LOCAL)
        report: ast.expr = _probe(
            "late_async" if self.is_async else "late",
            copy.deepcopy(self.late_args),
            _load(VALUE_LOCAL),
        )
        if self.is_async:
            report = ast.Await(report)
        hook = ast.If(
            ast.Compare(_load(CALL_LOCAL), [ast.IsNot()], [ast.Constant(None)]),
            [
                ast.Assign([ast.Name(VALUE_LOCAL, ast.Store())], copy.deepcopy(value)),
                ast.Try(
                    body=[
                        ast.If(
                            ast.UnaryOp(ast.Not(), copy.deepcopy(self.late)),
                            [ast.Return(copy.deepcopy(back))],
                            [],
                        )
                    ],
                    handlers=[ast.ExceptHandler(_load("Exception"), None, [ast.Pass()])],
                    orelse=[],
                    finalbody=[],
                ),
                ast.Expr(report),
                ast.Return(copy.deepcopy(back)),
            ],
            [],
        )
        _locate(hook, node)
        return [hook, node]


def return_tests(parts: tuple[ArgTest, ...] | None) -> ast.expr | None:
    """A return-only condition's items as one expression on ``_otrace_value_``, or None
    (no such condition, or a value that cannot be a constant of the code)."""
    if not parts or not all(
        isinstance(p.value, (int, float, str, bool, type(None))) for p in parts
    ):
        return None
    tests: list[ast.expr] = [
        ast.Compare(_load(VALUE_LOCAL), [_OPS[p.op]()], [ast.Constant(p.value)]) for p in parts
    ]
    return tests[0] if len(tests) == 1 else ast.BoolOp(ast.And(), tests)


_OPS: dict[str, type[ast.cmpop]] = {
    "==": ast.Eq,
    "!=": ast.NotEq,
    "<": ast.Lt,
    "<=": ast.LtE,
    ">": ast.Gt,
    ">=": ast.GtE,
}


def _arguments(code: CodeType) -> tuple[ast.expr, ast.expr]:
    """``(a, b, *args)`` and ``{'k': k, **kwargs}`` rebuilt from the parameters."""
    names = code.co_varnames
    npos, nkw = code.co_argcount, code.co_kwonlyargcount
    items: list[ast.expr] = [_load(n) for n in names[:npos]]
    i = npos + nkw
    if code.co_flags & inspect.CO_VARARGS:
        items.append(ast.Starred(_load(names[i]), ast.Load()))
        i += 1
    keys: list[ast.expr | None] = [ast.Constant(n) for n in names[npos : npos + nkw]]
    values: list[ast.expr] = [_load(n) for n in names[npos : npos + nkw]]
    if code.co_flags & inspect.CO_VARKEYWORDS:
        keys.append(None)
        values.append(_load(names[i]))
    return ast.Tuple(items, ast.Load()), ast.Dict(keys, values)


def inline_tests(predicate: Predicate | None, params: set[str]) -> ast.expr | None:
    """The argument comparisons of ``predicate`` as one expression on the parameters, or None."""
    if predicate is None:
        return None
    parts = predicate.parts if isinstance(predicate, And) else (predicate,)
    if not all(isinstance(p, ArgTest) for p in parts):
        return None
    tests: list[ast.expr] = []
    for part in parts:
        assert isinstance(part, ArgTest)
        if part.uses_return or part.arg not in params:
            continue
        if not isinstance(part.value, (int, float, str, bool, type(None))):
            continue
        left: ast.expr = _load(part.arg)
        if part.attr:
            left = ast.Attribute(left, part.attr, ast.Load())
        op = {
            "==": ast.Eq(),
            "!=": ast.NotEq(),
            "<": ast.Lt(),
            "<=": ast.LtE(),
            ">": ast.Gt(),
            ">=": ast.GtE(),
        }[part.op]
        tests.append(ast.Compare(left, [op], [ast.Constant(part.value)]))
    if not tests:
        return None
    return tests[0] if len(tests) == 1 else ast.BoolOp(ast.And(), tests)


def instrumented_node(
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    code: CodeType,
    calls: bool,
    tests: ast.expr | None,
    late: ast.expr | None = None,
) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The definition with the hooks added (see instrument.py).  ``late``: the tests of a
    return-only condition (:func:`return_tests`); then the call keeps only its arguments
    (``_otrace_call_``) and nothing is called unless the return value may match."""
    node = copy.deepcopy(node)
    body = node.body
    doc: list[ast.stmt] = []
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        doc, body = body[:1], body[1:]
    if not body:
        body = [ast.Pass()]
    start = body[0]
    prologue: list[ast.stmt] = []
    flags = code.co_flags
    if calls:
        is_asyncgen = bool(flags & inspect.CO_ASYNC_GENERATOR)
        is_async = bool(flags & inspect.CO_COROUTINE)
        args, kwargs = _arguments(code)
        packed = ast.Tuple([args, kwargs], ast.Load()) if late_split(code) else args
        # Arguments the body never rebinds (and no ** dict it could change) are still as
        # called when it returns: read them there, nothing is kept at entry.
        live = late is not None and not code.co_flags & inspect.CO_VARKEYWORDS
        live = live and not _rebinds(node, set(code.co_varnames[: nparams(code)]))
        late_args = copy.deepcopy(packed) if live else None
        returns = _Returns(is_async, is_asyncgen, late, late_args)
        body = [returns.visit(stmt) for stmt in body]
        flat: list[ast.stmt] = []
        for stmt in body:
            flat.extend(stmt if isinstance(stmt, list) else [stmt])
        assign = ast.Assign([ast.Name(CALL_LOCAL, ast.Store())], _probe("call", args, kwargs))
        guarded: list[ast.stmt] = [assign]
        if late is not None:
            # the arguments as called (the body may rebind its parameters): one tuple, and
            # the keyword part only where the function has keyword-only or ** parameters
            guarded = [ast.Assign([ast.Name(CALL_LOCAL, ast.Store())], packed)]
        elif tests is not None:
            guarded = [
                ast.Try(
                    body=[ast.If(tests, [assign], [])],
                    handlers=[ast.ExceptHandler(_load("Exception"), None, [copy.deepcopy(assign)])],
                    orelse=[],
                    finalbody=[],
                )
            ]
        prologue = [
            ast.Assign([ast.Name(CALL_LOCAL, ast.Store())], ast.Constant(None)),
            ast.If(
                ast.Compare(
                    ast.Attribute(_const(SITE_CONST), "state", ast.Load()),
                    [ast.IsNot()],
                    [ast.Constant(None)],
                ),
                guarded,
                [],
            ),
        ]
        if live:  # only whether the trace applied at the call
            state = ast.Attribute(_const(SITE_CONST), "state", ast.Load())
            prologue = [ast.Assign([ast.Name(CALL_LOCAL, ast.Store())], state)]
        if is_async and late is None:  # (a return-only condition never holds at the call)
            hold = ast.Attribute(_load(CALL_LOCAL), "hold", ast.Load())
            prologue.append(
                ast.If(
                    ast.BoolOp(
                        ast.And(),
                        [
                            ast.Compare(_load(CALL_LOCAL), [ast.IsNot()], [ast.Constant(None)]),
                            ast.Compare(hold, [ast.IsNot()], [ast.Constant(None)]),
                        ],
                    ),
                    [ast.Expr(ast.Await(copy.deepcopy(hold)))],
                    [],
                )
            )
        # the implicit ``return None`` at the end of the body
        end = ast.copy_location(ast.Return(None), flat[-1] if flat else start)
        tail = returns.visit(end)
        flat.extend(tail if isinstance(tail, list) else [tail])
        body = flat
    handler = ast.ExceptHandler(
        _load("Exception"), None, [ast.Expr(_probe("exc")), ast.Raise(None, None)]
    )
    wrapped = ast.Try(body=body, handlers=[handler], orelse=[], finalbody=[])
    # What otrace adds sits on the ``def`` line: a debugger started by the call hook then
    # stops at the body's first line (a new line event), and tracebacks never point at it.
    where = ast.Pass()
    where.lineno = where.end_lineno = node.lineno
    where.col_offset, where.end_col_offset = node.col_offset, node.col_offset + 3
    for added in (*prologue, handler):
        for sub in ast.walk(added):
            if isinstance(sub, (ast.stmt, ast.expr, ast.excepthandler)):
                ast.copy_location(sub, where)
    ast.copy_location(wrapped, start)
    node.body = doc + prologue + [wrapped]
    return node


def nparams(code: CodeType) -> int:
    """How many of ``code``'s variables are its parameters (``*args``/``**kwargs`` included)."""
    n = code.co_argcount + code.co_kwonlyargcount
    return (
        n + bool(code.co_flags & inspect.CO_VARARGS) + bool(code.co_flags & inspect.CO_VARKEYWORDS)
    )


def _rebinds(node: ast.AST, params: set[str]) -> bool:
    """Whether anything in ``node``'s body may bind or delete one of ``params`` (nested
    scopes included, so ``nonlocal`` and comprehension ``:=`` count; conservative)."""
    for sub in ast.walk(node):
        if sub is node:
            continue
        if isinstance(sub, ast.Name) and not isinstance(sub.ctx, ast.Load):
            bound = {sub.id}
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound = {sub.name}
        elif isinstance(sub, ast.ExceptHandler):
            bound = {sub.name} if sub.name else set()
        elif isinstance(sub, ast.alias):
            bound = {sub.asname or sub.name.partition(".")[0]}
        elif isinstance(sub, (ast.MatchAs, ast.MatchStar)):
            bound = {sub.name} if sub.name else set()
        elif isinstance(sub, ast.MatchMapping):
            bound = {sub.rest} if sub.rest else set()
        elif isinstance(sub, (ast.Global, ast.Nonlocal)):
            bound = set(sub.names)
        else:
            continue
        if bound & params:
            return True
    return False


def late_split(code: CodeType) -> bool:
    """Whether ``_otrace_call_`` of a return-only condition is ``(args, kwargs)`` (keyword-only
    or ``**`` parameters) rather than the ``args`` tuple alone."""
    return bool(code.co_kwonlyargcount or code.co_flags & inspect.CO_VARKEYWORDS)


def fill(code: CodeType, site: Any, probe: Any) -> CodeType:
    consts = tuple(
        site if c == SITE_CONST else probe if c == PROBE_CONST else c for c in code.co_consts
    )
    return code.replace(co_consts=consts)
