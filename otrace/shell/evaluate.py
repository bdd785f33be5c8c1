"""Evaluating Python typed at the shell: the safe-mode check and the namespaces.

Safe mode decides from the parsed expression, not from its characters: calls, assignments
(including ``:=``), ``await``/``yield``, lambdas, and attribute names starting with ``_``
(other than otrace's own ``_otrace_*``) are refused, so ``data["count"] >= 2`` works and ``helper(10)`` does not.  It guards against
accidents; it is not a security boundary (property getters still run when read).

Code runs with the program's globals as globals and the current directory as locals
(through :class:`otrace.vfs.nodes.DirNamespace`, so ``!x = 1`` in a class directory sets a
class attribute, and nothing is injected into the user's objects).

Thread safety: called from the shell thread.
"""

from __future__ import annotations

import ast
import codeop
import inspect
import os
import traceback
from collections.abc import Coroutine
from typing import Any

from otrace.errors import SafeModeError, UsageError

MAX_DEPTH = 200  # levels of an expression tree pr accepts (the compiler recurses)

_UNSAFE_NODES: dict[type, str] = {
    ast.Call: "calls",
    ast.NamedExpr: "assignments",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Lambda: "lambdas",
}

SAFE_HINT = "set safe_mode False"


def check_safe(source: str, mode: str = "eval") -> ast.AST:
    """Parse ``source``; raise SafeModeError if it would call or assign anything."""
    tree = ast.parse(source, mode=mode)
    for node in ast.walk(tree):
        what = _UNSAFE_NODES.get(type(node))
        if what:
            raise SafeModeError(
                f"{what} are not permitted in safe mode ({source.strip()!r}); {SAFE_HINT}"
            )
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("_otrace_")
        ):
            raise SafeModeError(
                f"attribute names starting with '_' are not permitted in safe mode (.{node.attr}); {SAFE_HINT}"
            )
    return tree


def parse_expression(source: str) -> ast.Expression:
    """Parse an expression for pr; UsageError (one line) if it is nested too deeply.

    CPython's parser and compiler recurse: a few thousand nested brackets or unary minus
    signs raise RecursionError or MemoryError, which must not reach the operator as an
    internal error.
    """
    try:
        tree = ast.parse(source, mode="eval")
    except (RecursionError, MemoryError):
        raise UsageError("Expression nested too deeply") from None
    except SyntaxError as exc:
        if "too many nested" in str(exc.msg):
            raise UsageError("Expression nested too deeply") from None
        raise
    depth_stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while depth_stack:
        node, depth = depth_stack.pop()
        if depth > MAX_DEPTH:
            raise UsageError(f"Expression nested too deeply (more than {MAX_DEPTH} levels)")
        depth_stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return tree


def is_incomplete(source: str) -> bool:
    """True if ``source`` is the start of a compound statement that needs more lines."""
    try:
        return codeop.compile_command(source, "<otrace>", "single") is None
    except (SyntaxError, ValueError, OverflowError):
        return False


def evaluate(expr: str, globals_dict: dict[str, Any], local_ns: Any) -> Any:
    """Evaluate one expression."""
    return eval(compile(expr, "<otrace>", "eval"), globals_dict, local_ns)


def execute(code: str, globals_dict: dict[str, Any], local_ns: Any) -> Any:
    """Run statements; if the last one is an expression, return its value (else None)."""
    tree = ast.parse(code, "<otrace>", "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)  # type: ignore[attr-defined]
    if tree.body:
        exec(compile(tree, "<otrace>", "exec"), globals_dict, local_ns)
    if last is not None:
        return eval(compile(last, "<otrace>", "eval"), globals_dict, local_ns)
    return None


_AWAIT_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def is_async(source: str, mode: str = "exec") -> bool:
    """True if ``source`` uses ``await`` at its top level (it then runs on the event loop)."""
    if "await" not in source:
        return False
    try:
        code = compile(source, "<otrace>", mode, flags=_AWAIT_FLAGS)
    except (SyntaxError, ValueError):
        return False
    return bool(code.co_flags & inspect.CO_COROUTINE)


def execute_async(code: str, globals_dict: dict[str, Any], local_ns: Any) -> Coroutine:
    """Like :func:`execute`, as a coroutine for the event loop (``await`` allowed).

    The code is compiled here, so a syntax error is raised at once, in the caller's thread.
    """
    tree = ast.parse(code, "<otrace>", "exec")
    last = None
    final = tree.body[-1] if tree.body else None
    if isinstance(final, ast.Expr):
        tree.body.pop()
        last = compile(ast.Expression(final.value), "<otrace>", "eval", flags=_AWAIT_FLAGS)
    body = compile(tree, "<otrace>", "exec", flags=_AWAIT_FLAGS) if tree.body else None
    return run_async(body, last, globals_dict, local_ns)


def evaluate_async(expr: str, globals_dict: dict[str, Any], local_ns: Any) -> Coroutine:
    """One expression containing ``await``, as a coroutine for the event loop."""
    return run_async(
        None, compile(expr, "<otrace>", "eval", flags=_AWAIT_FLAGS), globals_dict, local_ns
    )


async def run_async(body: Any, last: Any, globals_dict: dict[str, Any], local_ns: Any) -> Any:
    """Run compiled statements then an expression (either may be None or await), as a
    coroutine; returns the expression's value."""
    if body is not None:
        result = eval(body, globals_dict, local_ns)
        if body.co_flags & inspect.CO_COROUTINE:
            await result
    if last is None:
        return None
    value = eval(last, globals_dict, local_ns)
    if last.co_flags & inspect.CO_COROUTINE:
        value = await value
    return value


_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _hide_own_frames(te: traceback.TracebackException) -> None:
    """Drop otrace's frames (e.g. a trace wrapper between the caller and the traced
    function) from ``te`` and the exceptions chained to it: they are not the user's code."""
    seen: set[int] = set()
    todo = [te]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        kept = [f for f in item.stack if not f.filename.startswith(_OWN_DIR)]
        if len(kept) != len(item.stack):
            item.stack = traceback.StackSummary.from_list(kept)
        todo.extend(x for x in (item.__cause__, item.__context__) if x is not None)


def format_user_traceback(exc: BaseException, tb: Any = None) -> str:
    """The traceback of ``exc`` (from ``tb``, default its own) without otrace's frames."""
    te = traceback.TracebackException(
        type(exc), exc, tb if tb is not None else exc.__traceback__, compact=True
    )
    _hide_own_frames(te)
    return "".join(te.format()).rstrip()


def format_exception(exc: BaseException) -> str:
    """The traceback of an error in typed code, without the shell's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "<otrace>":
        tb = tb.tb_next
    if isinstance(exc, SyntaxError):
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    return format_user_traceback(exc, tb)
