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
import traceback
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


def format_exception(exc: BaseException) -> str:
    """The traceback of an error in typed code, without the shell's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "<otrace>":
        tb = tb.tb_next
    if isinstance(exc, SyntaxError):
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()
