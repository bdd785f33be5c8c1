"""A bounded ``repr`` that formats big containers a few items at a time.

The builtin ``repr`` of a list, dict or set formats the whole container in one C call: for
a 10**6-item list that holds the GIL for a quarter of a second, stalling every program
thread, and ``list(d.items())`` or ``sorted(d)`` on the way (as :mod:`reprlib` does) adds a
tuple per entry for the garbage collector to walk.  Here builtin containers -- and the
subclasses and :mod:`collections` types that keep a builtin ``repr`` -- are walked with
:func:`itertools.islice` over their builtin iterators, at most ``items`` entries each, in
Python, so the interpreter can switch threads between items; the text is bounded by
``limit`` characters and nesting by ``depth``.  Anything else is shown by ``leaf`` (the
builtin ``repr`` by default: program code, for callers that may run it), and a ``leaf`` that
raises -- anything, ``SystemExit`` included -- gives a placeholder.

Thread safety: pure functions over objects other threads may be changing (a container that
changes size while it is read is read again, once, then shown as far as it was read).
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

_TYPE_DICT: Any = type.__dict__["__dict__"]
_TYPE_MRO: Any = type.__dict__["__mro__"]
_TYPE_NAME: Any = type.__dict__["__name__"]
_FACTORY: Any = collections.defaultdict.__dict__["default_factory"]
_OLD_ORDERED = sys.version_info < (3, 12)  # OrderedDict([(k, v)]) before 3.12


def _failed(obj: object, exc: BaseException) -> str:
    return f"<{_TYPE_NAME.__get__(type(obj))} object; repr failed: {type(exc).__name__}>"


def plain_leaf(obj: Any) -> str:
    """The object's own ``repr`` (program code), contained."""
    try:
        text = repr(obj)
    except BaseException as exc:  # noqa: B036 - a program's repr may raise SystemExit too
        return _failed(obj, exc)
    return text if type(text) is str else "<repr not a str>"


def _own(t: type, name: str) -> Any:
    """The special method ``name`` that instances of ``t`` use (no metaclass code runs)."""
    for base in _TYPE_MRO.__get__(t):
        found = _TYPE_DICT.__get__(base).get(name)
        if found is not None:
            return found
    return None


# builtin repr -> (shape, iterator factory); shapes: "list", "tuple", "dict", "set"
_SHAPES: dict[Any, tuple[str, Callable[[Any], Iterable]]] = {
    list.__repr__: ("list", list.__iter__),
    tuple.__repr__: ("tuple", tuple.__iter__),
    dict.__repr__: ("dict", dict.items),
    set.__repr__: ("set", set.__iter__),
    frozenset.__repr__: ("set", frozenset.__iter__),
    collections.defaultdict.__repr__: ("defaultdict", dict.items),
    collections.OrderedDict.__repr__: ("ordered", collections.OrderedDict.items),
    collections.deque.__repr__: ("deque", collections.deque.__iter__),
    collections.Counter.__repr__: ("counter", dict.items),
}


def _shape(t: type) -> tuple[str, Callable[[Any], Iterable]] | None:
    try:
        return _SHAPES.get(_own(t, "__repr__"))
    except TypeError:  # an unhashable __repr__ object: not one of ours
        return None


def _take(obj: Any, it: Callable[[Any], Iterable], n: int) -> tuple[list, bool]:
    """Up to ``n`` items of ``obj`` (read in one C call each try) and whether there are more."""
    for _ in range(2):
        try:
            got = list(islice(it(obj), n + 1))
        except RuntimeError:  # changed size while read
            continue
        return got[:n], len(got) > n
    return [], True


class _Writer:
    def __init__(self, limit: int, items: int, depth: int, leaf: Callable[[Any], str]) -> None:
        self.out: list[str] = []
        self.room = limit
        self.items = items
        self.depth = depth
        self.leaf = leaf
        self.active: set[int] = set()

    def put(self, text: str) -> None:
        self.out.append(text)
        self.room -= len(text)

    def value(self, obj: Any, depth: int) -> None:
        if self.room <= 0:
            self.put("...")
            return
        t = type(obj)
        if t is str or t is bytes or t is bytearray:
            self.put(repr(obj[: self.room]) + "..." if len(obj) > self.room else repr(obj))
        elif t is int:
            self.put(repr(obj) if obj.bit_length() < 4000 else f"<int of {obj.bit_length()} bits>")
        elif t is float or t is bool or obj is None or t is complex:
            self.put(repr(obj))
        else:
            shape = _shape(t)
            if shape is None:
                self.put(self.leaf(obj))
            else:
                self.container(obj, t, shape, depth)

    def container(self, obj: Any, t: type, shape: tuple, depth: int) -> None:
        kind, it = shape
        name = _TYPE_NAME.__get__(t)
        if kind == "list":
            opener, closer = "[", "]"
        elif kind == "tuple":
            opener, closer = "(", ")"
        elif kind == "dict":
            opener, closer = "{", "}"
        elif kind == "set":
            opener, closer = ("{", "}") if t is set else (f"{name}({{", "})")
        elif kind == "defaultdict":
            factory = self.leaf(_FACTORY.__get__(obj))  # may be a program callable
            opener, closer = f"{name}({factory}, {{", "})"
        elif kind == "ordered":
            opener, closer = (f"{name}([", "])") if _OLD_ORDERED else (f"{name}({{", "})")
        elif kind == "counter":
            opener, closer = f"{name}({{", "})"
        else:  # deque
            maxlen = collections.deque.maxlen.__get__(obj)
            opener, closer = f"{name}([", "])" if maxlen is None else f"], maxlen={maxlen})"
        if id(obj) in self.active:  # a container inside itself, as repr shows it
            self.put(opener + "..." + closer)
            return
        if depth >= self.depth:
            self.put(opener + "..." + closer)
            return
        entries, more = _take(obj, it, self.items)
        if kind == "set" and t is set and not entries and not more:
            self.put("set()")
            return
        if not entries and not more and kind in ("set", "counter", "ordered"):
            self.put(f"{name}()")
            return
        if kind == "counter" and not more:
            entries.sort(key=lambda kv: kv[1] if type(kv[1]) in (int, float) else 0, reverse=True)
        self.active.add(id(obj))
        try:
            self.put(opener)
            pairs = kind in ("dict", "defaultdict", "counter") or (
                kind == "ordered" and not _OLD_ORDERED
            )
            for n, entry in enumerate(entries):
                if n:
                    self.put(", ")
                if self.room <= 0:
                    self.put("...")
                    more = False
                    break
                if pairs:
                    self.value(entry[0], depth + 1)
                    self.put(": ")
                    self.value(entry[1], depth + 1)
                elif kind == "ordered":
                    self.put("(")
                    self.value(entry[0], depth + 1)
                    self.put(", ")
                    self.value(entry[1], depth + 1)
                    self.put(")")
                else:
                    self.value(entry, depth + 1)
            if more:
                self.put(", ..." if entries else "...")
            if kind == "tuple" and len(entries) == 1 and not more:
                self.put(",")
            self.put(closer)
        finally:
            self.active.discard(id(obj))


def piecewise_repr(
    obj: Any,
    limit: int = 2000,
    items: int = 20,
    depth: int = 4,
    leaf: Callable[[Any], str] = plain_leaf,
) -> str:
    """``repr(obj)`` bounded to ``limit`` characters (then ``...``), ``items`` entries per
    container and ``depth`` levels, formatting containers piecewise (module docstring).
    ``leaf`` shows everything that is not a builtin scalar or container; it must not raise."""
    writer = _Writer(limit, items, depth, leaf)
    writer.value(obj, 0)
    text = "".join(writer.out)
    return text if len(text) <= limit else text[:limit] + "..."


def str_is_piecewise(obj: Any) -> bool:
    """True if ``str(obj)`` is the ``repr`` of a container that is shown piecewise."""
    t = type(obj)
    return _shape(t) is not None and _own(t, "__str__") is object.__str__
