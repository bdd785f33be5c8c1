"""``repr`` and ``str`` that never raise and never run away.

The traced program's objects may have a ``__repr__`` that raises, loops over a huge
structure or takes a lock; a debugger must show *something* and carry on.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from otrace.contexts.piecewise import piecewise_repr, str_is_piecewise


def _failed(obj: object, exc: BaseException) -> str:
    try:
        name = type(obj).__name__
    except BaseException:  # noqa: B036  # pragma: no cover - type() itself cannot fail
        name = "object"
    return f"<{name} object; repr failed: {type(exc).__name__}>"


def safe_repr(obj: object, limit: int = 2000, items: int = 20, depth: int = 3) -> str:
    """A bounded ``repr`` of ``obj``: ``items`` per container, ``depth`` levels, ``limit``
    characters; containers are formatted piecewise (:mod:`otrace.contexts.piecewise`); a
    failing ``repr`` gives a placeholder."""
    try:
        return piecewise_repr(obj, limit, items=items, depth=depth)
    except BaseException as exc:  # noqa: B036 - a program's repr may raise SystemExit too
        return _failed(obj, exc)


def safe_str(obj: object, limit: int = 2000) -> str:
    """A bounded ``str`` of ``obj`` (strings pass through); failures give a placeholder.

    A builtin container (``str`` is its ``repr``) is formatted piecewise, 100 items per
    container and 6 levels deep, never by one builtin ``repr`` of the whole."""
    if type(obj) is str:  # type(): a program's __class__ may raise
        text = obj
    elif str_is_piecewise(obj):
        try:
            return piecewise_repr(obj, limit, items=100, depth=6)
        except BaseException as exc:  # noqa: B036 - a program's repr may raise SystemExit too
            return _failed(obj, exc)
    else:
        try:
            text = str(obj)
        except BaseException as exc:  # noqa: B036 - a program's str may raise SystemExit too
            return _failed(obj, exc)
    if len(text) > limit:
        text = text[:limit] + "..."
    return text


_SCALARS = (int, float, complex, bool, type(None), bytes, str)


def brief(obj: object, limit: int = 200) -> str:
    """A bounded text for a value that runs no code of the program's.

    Exact built-in scalars and containers (``list``, ``tuple``, ``dict``, ``set``) are shown
    like ``repr`` (long strings cut before they are quoted, containers cut after a few items);
    anything else -- instances of program classes, subclasses of built-ins -- as
    ``object.__repr__`` (``<module.Class object at 0x...>``), and an exception as its type
    and ``brief`` of its arguments.  For trace announcements and argument summaries made on
    the traced thread, where a program ``__repr__``/``__str__`` could call traced code,
    block, or be arbitrarily slow.
    """
    out: list[str] = []
    _brief(obj, out, limit, 3)
    text = "".join(out)
    return text if len(text) <= limit else text[:limit] + "..."


_BRACKETS: dict[Any, tuple[str, str]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    dict: ("{", "}"),
    set: ("{", "}"),
    frozenset: ("{", "}"),
}
_ARGS: Any = BaseException.__dict__["args"]  # the slot itself, never a subclass's property


def _brief(obj: Any, out: list[str], budget: int, depth: int) -> None:
    kind = type(obj)
    if kind is str:
        text = obj if len(obj) <= budget else obj[:budget]
        out.append(repr(text) + ("..." if text is not obj else ""))
    elif kind is bytes:
        out.append(repr(obj[:budget]))
    elif kind in _SCALARS:
        out.append(repr(obj) if kind is not int or obj.bit_length() < 200 else "<big int>")
    elif kind in (list, tuple, set, frozenset, dict):
        if depth <= 0:
            out.append(f"<{kind.__name__} of {len(obj)}>")
            return
        open_, close = _BRACKETS[kind]
        start = len(out)
        out.append(open_)
        # eleven items at most: a tuple per entry of a huge dict would be work for the GC
        items = list(islice(dict.items(obj) if kind is dict else obj, 11))
        for n, item in enumerate(items[:10]):
            if n:
                out.append(", ")
            if sum(map(len, out[start:])) > budget:
                out.append("...")
                break
            if kind is dict:
                _brief(item[0], out, 40, depth - 1)
                out.append(": ")
                _brief(item[1], out, 60, depth - 1)
            else:
                _brief(item, out, 60, depth - 1)
        else:
            if len(items) > 10:
                out.append(", ...")
        if kind is tuple and len(items) == 1:
            out.append(",")
        out.append(close)
    elif isinstance(obj, BaseException):
        out.append(f"{kind.__name__}(")
        args = _ARGS.__get__(obj)
        for n, arg in enumerate(args[:3]):
            if n:
                out.append(", ")
            _brief(arg, out, 100, depth - 1)
        out.append(")")
    else:
        out.append(object.__repr__(obj))


def exc_text(exc: BaseException, limit: int = 300) -> str:
    """``str(exc)`` for the usual exception (its string arguments), without its ``__str__``."""
    args = _ARGS.__get__(exc)
    text = ", ".join(a if type(a) is str else brief(a, 100) for a in args[:3])
    return text if len(text) <= limit else text[:limit] + "..."


_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}
_CONTROLS.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})
_CONTROLS.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})  # C1 controls (CSI, OSC, ...)


def escape_controls(text: str) -> str:
    """``text`` with control characters written as escapes, so it cannot drive a terminal.

    For names and text that come from outside otrace (a file, a browser) before they are
    shown: escape sequences (clear screen, clipboard writes, fake prompts) print as
    ``\\x1b[2J`` instead of acting.
    """
    return text.translate(_CONTROLS)


_TERMINAL = {c: e for c, e in _CONTROLS.items() if c not in (ord("\n"), ord("\t"))}


def terminal_text(text: str) -> str:
    """Like :func:`escape_controls`, but line breaks and tabs stay as they are (for values
    printed as text, whose lines should still read as lines)."""
    return text.translate(_TERMINAL)
