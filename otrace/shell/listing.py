"""How ``ls`` shows names and values: columns, ``name = value`` lines, kinds of entries."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

from otrace.contexts import safe_repr, safe_str
from otrace.contexts.lazy import materialise
from otrace.contexts.lazytext import LazyText
from otrace.vfs.asyncview import LiveNode
from otrace.vfs.pure import pure_repr

ALWAYS_SHOWN = frozenset({"__call__", "__trc", "__up", "__down", "__cause__", "__context__"})


def is_hidden(name: str) -> bool:
    """``__x__`` names are hidden unless ``ls -a`` (a few useful ones never are)."""
    return (
        len(name) > 4 and name.startswith("__") and name.endswith("__") and name not in ALWAYS_SHOWN
    )


def kind_of(value: Any) -> str:
    """``c`` class, ``m`` module, ``f`` function or method, ``v`` anything else.

    Decided by ``type(value)``: ``isinstance`` would ask a program's ``__class__``, which may
    raise or run code.
    """
    t = type(value)
    if issubclass(t, type):
        return "c"
    if issubclass(t, types.ModuleType):
        return "m"
    if issubclass(t, (types.FunctionType, types.MethodType, classmethod, staticmethod)):
        return "f"
    return "v"


def render_value(value: Any, limit: int = 300, pure: bool = False) -> str:
    """The value side of ``ls -l``: mappings by their keys, sequences by their items' repr
    (so ``['0']`` does not read as ``[0]``), requests and tasks by their summary line.

    ``pure`` (safe mode): no program ``__repr__``/``__str__`` runs (see vfs.pure).  Types are
    told by ``type()``: ``isinstance`` would ask a program's ``__class__``, which may raise.
    """
    t = type(value)
    if issubclass(t, LiveNode):
        try:
            return value.summary()[:limit]
        except Exception as exc:
            return f"<gone: {safe_str(exc, 100)}>"
    if pure:
        return _pure_render(value, limit)
    if not (issubclass(t, (Mapping, list, tuple)) or t is LazyText):
        return safe_repr(value, limit)
    if isinstance(value, Mapping):
        try:
            keys = []
            for i, k in enumerate(value):
                if i >= 20:
                    keys.append("...")
                    break
                keys.append(safe_str(k, 60))
            return "{" + ", ".join(keys) + "}"
        except Exception:
            return safe_repr(value, limit)
    if isinstance(value, (list, tuple)):
        items = [safe_repr(v, 60) for v in value[:20]] + (["..."] if len(value) > 20 else [])
        if isinstance(value, tuple):
            text = "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        else:
            text = "[" + ", ".join(items) + "]"
        return text if len(text) <= limit else text[:limit] + "..."
    if isinstance(value, LazyText):
        return safe_str(value, limit)
    return safe_repr(value, limit)


def _pure_render(value: Any, limit: int) -> str:
    """render_value for safe mode: the same shapes, without program __repr__/__str__."""
    t = type(value)

    def one(v: Any) -> str:
        return v[:60] if type(v) is str else pure_repr(v, 60)

    if dict in t.__mro__:
        materialise(value)  # a context's frames are built when first read
        keys = list(dict.keys(value))
        shown = [one(k) for k in keys[:20]] + (["..."] if len(keys) > 20 else [])
        return "{" + ", ".join(shown) + "}"
    if t in (list, tuple):
        items = [pure_repr(v, 60) for v in value[:20]] + (["..."] if len(value) > 20 else [])
        if t is tuple:
            text = "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        else:
            text = "[" + ", ".join(items) + "]"
        return text if len(text) <= limit else text[:limit] + "..."
    if t is LazyText:
        return safe_str(value, limit)
    return pure_repr(value, limit)


def columns(names: list[str], width: int) -> list[str]:
    """Lay names out in columns, row by row, as ``ls`` does."""
    if not names:
        return []
    colw = min(max(width // 2 - 1, 1), max(len(n) for n in names))
    ncols = max(1, (width + 1) // (colw + 1))
    nrows = (len(names) + ncols - 1) // ncols
    ncols = (len(names) + nrows - 1) // nrows
    rows = []
    for r in range(nrows):
        cells = [names[c * nrows + r] for c in range(ncols) if c * nrows + r < len(names)]
        rows.append(" ".join(c.ljust(colw) for c in cells).rstrip())
    return rows


def long_lines(pairs: list[tuple[str, Any]], width: int, pure: bool = False) -> list[str]:
    """``name = value`` lines, a blank line after every fifth."""
    if not pairs:
        return []
    padw = min(max(width // 3 - 1, 1), max(len(n) for n, _ in pairs))
    out = []
    for i, (name, value) in enumerate(pairs):
        if i and i % 5 == 0:
            out.append("")
        out.append(f"{name.ljust(padw)} = {render_value(value, max(width * 4, 200), pure)}")
    return out
