"""Adding the trace hooks to a function's definition: the syntax tree codegen.py compiles.

What the hooks do is said in :mod:`otrace.tracing.instrument`; :mod:`otrace.tracing.codegen`
parses the source and compiles the result.  The hooks are written with string constants
(``SITE_CONST``, ``PROBE_CONST``) that codegen's ``fill`` replaces by the real objects, and
keep what they need in two added locals (``CALL_LOCAL``, ``VALUE_LOCAL``).  Whether a
return-only condition's hook reads the parameters at the return or keeps them at the call is
decided here too (:func:`nparams`, :func:`late_split`).

Pure functions of their arguments; any thread.
"""

from __future__ import annotations

import ast
import copy
import inspect
from types import CodeType
from typing import Any

SITE_CONST = "__otrace_site__"
PROBE_CONST = "__otrace_probe__"
CALL_LOCAL = "_otrace_call_"
VALUE_LOCAL = "_otrace_value_"


def locate(new: ast.AST, like: ast.AST) -> None:
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


def _const(name: str) -> ast.Constant:
    return ast.Constant(name)


def _probe(method: str, *args: ast.expr) -> ast.Call:
    return ast.Call(ast.Attribute(_const(PROBE_CONST), method, ast.Load()), list(args), [])


def load(name: str) -> ast.Name:
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
        self.late_args = late_args if late_args is not None else load(CALL_LOCAL)

    def visit_FunctionDef(self, node: ast.AST) -> ast.AST:
        return node  # nested scopes keep their own returns

    visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = visit_FunctionDef

    def visit_Return(self, node: ast.Return) -> Any:
        if self.late is not None:
            return self._late_return(node)
        if self.is_asyncgen:  # a bare return; no value allowed
            hook = ast.If(
                ast.Compare(load(CALL_LOCAL), [ast.IsNot()], [ast.Constant(None)]),
                [ast.Expr(_probe("ret", load(CALL_LOCAL), ast.Constant(None)))],
                [],
            )
            locate(hook, node)
            return [hook, node]
        value = node.value if node.value is not None else ast.Constant(None)
        traced: ast.expr = _probe(
            "ret_async" if self.is_async else "ret", load(CALL_LOCAL), copy.deepcopy(value)
        )
        if self.is_async:
            traced = ast.Await(traced)
        node.value = ast.IfExp(
            ast.Compare(load(CALL_LOCAL), [ast.Is()], [ast.Constant(None)]), value, traced
        )
        like = value if getattr(value, "lineno", None) is not None else node
        locate(node.value, like)
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
        back: ast.expr | None = None if self.is_asyncgen else load(VALUE_LOCAL)
        report: ast.expr = _probe(
            "late_async" if self.is_async else "late",
            copy.deepcopy(self.late_args),
            load(VALUE_LOCAL),
        )
        if self.is_async:
            report = ast.Await(report)
        hook = ast.If(
            ast.Compare(load(CALL_LOCAL), [ast.IsNot()], [ast.Constant(None)]),
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
                    handlers=[ast.ExceptHandler(load("Exception"), None, [ast.Pass()])],
                    orelse=[],
                    finalbody=[],
                ),
                ast.Expr(report),
                ast.Return(copy.deepcopy(back)),
            ],
            [],
        )
        locate(hook, node)
        return [hook, node]


def _arguments(code: CodeType) -> tuple[ast.expr, ast.expr]:
    """``(a, b, *args)`` and ``{'k': k, **kwargs}`` rebuilt from the parameters."""
    names = code.co_varnames
    npos, nkw = code.co_argcount, code.co_kwonlyargcount
    items: list[ast.expr] = [load(n) for n in names[:npos]]
    i = npos + nkw
    if code.co_flags & inspect.CO_VARARGS:
        items.append(ast.Starred(load(names[i]), ast.Load()))
        i += 1
    keys: list[ast.expr | None] = [ast.Constant(n) for n in names[npos : npos + nkw]]
    values: list[ast.expr] = [load(n) for n in names[npos : npos + nkw]]
    if code.co_flags & inspect.CO_VARKEYWORDS:
        keys.append(None)
        values.append(load(names[i]))
    return ast.Tuple(items, ast.Load()), ast.Dict(keys, values)


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
                    handlers=[ast.ExceptHandler(load("Exception"), None, [copy.deepcopy(assign)])],
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
            hold = ast.Attribute(load(CALL_LOCAL), "hold", ast.Load())
            prologue.append(
                ast.If(
                    ast.BoolOp(
                        ast.And(),
                        [
                            ast.Compare(load(CALL_LOCAL), [ast.IsNot()], [ast.Constant(None)]),
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
        load("Exception"), None, [ast.Expr(_probe("exc")), ast.Raise(None, None)]
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
