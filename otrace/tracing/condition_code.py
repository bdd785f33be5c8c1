"""A condition's comparisons as code: the tests instrumented code makes inline.

:func:`inline_tests` turns a condition's argument comparisons into one expression on the
parameters (tested before anything is called); :func:`return_tests` turns a return-only
condition's into one on ``_otrace_value_`` (tested at each return).  Only comparisons with
values that can be constants of the code are inlined; the full evaluation does the rest.

Pure functions of their arguments; any thread.
"""

from __future__ import annotations

import ast

from otrace.tracing.conditions import And, ArgTest, Predicate
from otrace.tracing.rewrite import VALUE_LOCAL, load


def return_tests(parts: tuple[ArgTest, ...] | None) -> ast.expr | None:
    """A return-only condition's items as one expression on ``_otrace_value_``, or None
    (no such condition, or a value that cannot be a constant of the code)."""
    if not parts or not all(
        isinstance(p.value, (int, float, str, bool, type(None))) for p in parts
    ):
        return None
    tests: list[ast.expr] = [
        ast.Compare(load(VALUE_LOCAL), [_OPS[p.op]()], [ast.Constant(p.value)]) for p in parts
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
        left: ast.expr = load(part.arg)
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
