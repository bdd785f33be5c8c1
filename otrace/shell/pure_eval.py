"""Evaluating an expression in safe mode: only operations known to run no program code.

Safe mode cannot decide from the text alone: ``spy['x']``, ``spy + 1``, ``1 in gen``,
``[*spy]``, ``{**obj}``, ``f'{spy:spec}'``, ``'%(k)s' % spy`` and ``spy.missing`` all call
the program's special methods without a call in the text.  So the expression is interpreted
here node by node, and each operation runs only when the operand *types* make it pure:

* names and attributes: read with :func:`otrace.vfs.pure.static_get` (no properties,
  descriptors with code, ``__getattr__``), never a name starting with ``_``;
* indexing: exact ``list``/``tuple``/``str``/``bytes``/``range`` by int or slice, exact
  ``dict`` (or a dict subclass read with dict's own lookup, so ``__missing__`` never inserts)
  by a scalar key, never a string key starting with ``_``;
* arithmetic, comparisons, ``in``, truth tests, ``%``/f-string formatting, ``*``/``**``
  unpacking: only on builtin scalars and exact builtin containers of them (deeply);
  ``is``/``is not`` on anything;
* sizes are bounded (``[0] * 10**9``, ``10 ** 10 ** 9`` are refused);
* calls, lambdas, comprehensions, ``:=``, ``await``/``yield`` are refused.

Anything else raises :class:`otrace.vfs.pure.Impure` (a SafeModeError) naming what was
refused.  Errors of the expression itself (KeyError, IndexError, ...) are raised as Python
errors, as in normal evaluation.

Thread safety: the shell thread; it reads objects other threads may change.
"""

from __future__ import annotations

import ast
import builtins
import operator
from collections.abc import Callable
from typing import Any

from otrace.vfs import pure
from otrace.vfs.pure import HINT, Impure, dict_lookup, is_private, is_pure_value, type_name

MAX_DEPTH = 100  # nesting of the expression tree
MAX_SIZE = 1_000_000  # items or characters an operation may produce

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
    ast.BitAnd: operator.and_,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
    ast.Invert: operator.invert,
    ast.Not: operator.not_,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_REFUSED: dict[type, str] = {
    ast.Call: "calls",
    ast.Lambda: "lambdas",
    ast.NamedExpr: "assignments",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
}
_SEQUENCES = (list, tuple, str, bytes, range)
_ITERABLE = (list, tuple, str, bytes, range, set, frozenset, dict)


def refuse(what: str) -> Impure:
    return Impure(f"{what} not permitted in safe mode; {HINT}")


def check_depth(tree: ast.AST) -> None:
    """A clear error for an expression nested deeper than :data:`MAX_DEPTH`."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Impure(f"expression nested too deeply (more than {MAX_DEPTH} levels)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class PureEvaluator:
    """Evaluate a parsed expression; ``lookup(name)`` finds a name (KeyError if absent)."""

    def __init__(self, lookup: Callable[[str], Any]):
        self.lookup = lookup

    def run(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            node = node.body
        check_depth(node)
        return self.eval(node)

    def eval(self, node: ast.AST) -> Any:
        what = _REFUSED.get(type(node))
        if what:
            raise refuse(what)
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise refuse(f"{type(node).__name__} expressions")
        return method(node)

    # -- leaves ---------------------------------------------------------------------------
    def _Constant(self, node: ast.Constant) -> Any:
        return node.value

    def _Name(self, node: ast.Name) -> Any:
        if is_private(node.id) and node.id != "_otrace_value":
            raise refuse(f"private names ({node.id})")
        try:
            return self.lookup(node.id)
        except KeyError:
            raise NameError(f"name {node.id!r} is not defined") from None

    def _Attribute(self, node: ast.Attribute) -> Any:
        if is_private(node.attr) and not node.attr.startswith("_otrace_"):
            raise refuse(f"private names (.{node.attr})")
        value = self.eval(node.value)
        try:
            return pure.static_get(value, node.attr)
        except AttributeError:
            if pure.is_trusted(type(value)):
                raise  # otrace's own objects explain themselves (stored stand-ins)
            raise AttributeError(
                f"{type_name(value)!r} object has no attribute {node.attr!r}"
            ) from None

    # -- containers -----------------------------------------------------------------------
    def _Subscript(self, node: ast.Subscript) -> Any:
        container = self.eval(node.value)
        key = (
            self._slice(node.slice) if isinstance(node.slice, ast.Slice) else self.eval(node.slice)
        )
        t = type(container)
        if t in _SEQUENCES and (type(key) in (int, bool) or type(key) is slice):
            return container[key]
        if dict in t.__mro__:
            if type(key) is str and is_private(key):
                raise refuse(f"private names ([{key!r}])")
            found, value = dict_lookup(container, key)
            if not found:
                raise KeyError(key)
            return value
        raise refuse(f"indexing a {type_name(container)} (it may run program code)")

    def _slice(self, node: ast.Slice) -> slice:
        parts = []
        for part in (node.lower, node.upper, node.step):
            value = None if part is None else self.eval(part)
            if value is not None and type(value) not in (int, bool):
                raise refuse(f"slicing with a {type_name(value)}")
            parts.append(value)
        return slice(*parts)

    def _items(self, elts: list[ast.expr]) -> list[Any]:
        out: list[Any] = []
        for elt in elts:
            if isinstance(elt, ast.Starred):
                value = self.eval(elt.value)
                if type(value) not in _ITERABLE:
                    raise refuse(f"unpacking a {type_name(value)} (it may run program code)")
                if type(value) is dict:
                    value = dict.keys(value)
                self._room(len(out) + len(value))
                out.extend(value)
            else:
                out.append(self.eval(elt))
        return out

    def _Tuple(self, node: ast.Tuple) -> Any:
        return tuple(self._items(node.elts))

    def _List(self, node: ast.List) -> Any:
        return self._items(node.elts)

    def _Set(self, node: ast.Set) -> Any:
        items = self._items(node.elts)
        self._pure(*items, why="a set of")
        return set(items)

    def _Dict(self, node: ast.Dict) -> Any:
        out: dict[Any, Any] = {}
        for k, v in zip(node.keys, node.values, strict=True):
            if k is None:  # {**mapping}
                value = self.eval(v)
                if type(value) is not dict:
                    raise refuse(f"unpacking a {type_name(value)} (it may run program code)")
                self._pure(*dict.keys(value), why="keys of")
                out.update(dict.items(value))
                continue
            key = self.eval(k)
            self._pure(key, why="a key of")
            out[key] = self.eval(v)
        return out

    # -- operators ------------------------------------------------------------------------
    def _pure(self, *values: Any, why: str) -> None:
        for value in values:
            if not is_pure_value(value):
                raise refuse(f"{why} a {type_name(value)} (it may run program code)")

    def _room(self, size: int) -> None:
        if size > MAX_SIZE:
            raise refuse(f"a result this large ({size} > {MAX_SIZE} items)")

    def _BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.eval(node.left), self.eval(node.right)
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise refuse(f"the {type(node.op).__name__} operator")
        self._pure(left, right, why="an operation on")
        self._bound(node.op, left, right)
        return op(left, right)

    def _bound(self, op: ast.operator, left: Any, right: Any) -> None:
        if isinstance(op, ast.Mult):
            for seq, n in ((left, right), (right, left)):
                if type(seq) in (list, tuple, str, bytes) and type(n) in (int, bool):
                    self._room(len(seq) * max(n, 0))
        elif isinstance(op, ast.Pow) and type(left) is int and type(right) is int:
            if right > 0 and max(left.bit_length(), 1) * right > MAX_SIZE * 8:
                raise refuse("a power this large")
        elif isinstance(op, ast.LShift) and type(right) is int and right > MAX_SIZE * 8:
            raise refuse("a shift this large")
        elif isinstance(op, ast.Add) and type(left) in (list, tuple, str, bytes):
            self._room(len(left) + len(right))
        elif isinstance(op, ast.Mod) and type(left) in (str, bytes):
            self._room(len(left) * 10)

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.eval(node.operand)
        self._pure(value, why="an operation on")
        return _UNARY[type(node.op)](value)

    def _truth(self, value: Any) -> bool:
        self._pure(value, why="the truth of")
        return bool(value)

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        value = None
        for sub in node.values:
            value = self.eval(sub)
            truth = self._truth(value)
            if isinstance(node.op, ast.And) and not truth:
                return value
            if isinstance(node.op, ast.Or) and truth:
                return value
        return value

    def _IfExp(self, node: ast.IfExp) -> Any:
        return self.eval(node.body) if self._truth(self.eval(node.test)) else self.eval(node.orelse)

    def _Compare(self, node: ast.Compare) -> Any:
        left = self.eval(node.left)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = self.eval(comp)
            if isinstance(op, ast.Is):
                ok = left is right
            elif isinstance(op, ast.IsNot):
                ok = left is not right
            else:
                self._pure(left, right, why="a comparison with")
                ok = _COMPARE[type(op)](left, right)
            if not ok:
                return False
            left = right
        return True

    def _JoinedStr(self, node: ast.JoinedStr) -> str:
        out = []
        for part in node.values:
            out.append(self.eval(part))
        text = "".join(out)
        self._room(len(text))
        return text

    def _FormattedValue(self, node: ast.FormattedValue) -> str:
        value = self.eval(node.value)
        self._pure(value, why="formatting")
        if node.conversion == ord("r"):
            value = repr(value)
        elif node.conversion == ord("s"):
            value = str(value)
        elif node.conversion == ord("a"):
            value = ascii(value)
        spec = "" if node.format_spec is None else self.eval(node.format_spec)
        return format(value, spec)


def namespace_lookup(here: Any, view: Callable[[Any], Any], globals_dict: dict) -> Callable:
    """Names as ``pr`` finds them: the current directory, the globals, then builtins."""

    def lookup(name: str) -> Any:
        if name == "_otrace_value":  # otrace's name for the current directory's object
            return here
        try:
            return view(here).get(name)
        except KeyError:
            pass
        found, value = dict_lookup(globals_dict, name)
        if found:
            return value
        found, value = dict_lookup(vars(builtins), name)
        if found:
            return value
        raise KeyError(name)

    return lookup
