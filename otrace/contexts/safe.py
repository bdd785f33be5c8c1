"""``repr`` and ``str`` that never raise and never run away.

The traced program's objects may have a ``__repr__`` that raises, loops over a huge
structure or takes a lock; a debugger must show *something* and carry on.
"""

from __future__ import annotations

import reprlib

_REPR = reprlib.Repr()
_REPR.maxstring = 200
_REPR.maxother = 200
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdict = 20
_REPR.maxlevel = 3


def _failed(obj: object, exc: BaseException) -> str:
    try:
        name = type(obj).__name__
    except BaseException:  # noqa: B036  # pragma: no cover - type() itself cannot fail
        name = "object"
    return f"<{name} object; repr failed: {type(exc).__name__}>"


def safe_repr(obj: object, limit: int = 2000) -> str:
    """A bounded ``repr`` of ``obj``; a failing ``repr`` gives a placeholder."""
    try:
        text = _REPR.repr(obj)
    except BaseException as exc:  # noqa: B036 - a program's repr may raise SystemExit too
        return _failed(obj, exc)
    if len(text) > limit:
        text = text[:limit] + "..."
    return text


def safe_str(obj: object, limit: int = 2000) -> str:
    """A bounded ``str`` of ``obj`` (strings pass through); failures give a placeholder."""
    if type(obj) is str:  # type(): a program's __class__ may raise
        text = obj
    else:
        try:
            text = str(obj)
        except BaseException as exc:  # noqa: B036 - a program's str may raise SystemExit too
            return _failed(obj, exc)
    if len(text) > limit:
        text = text[:limit] + "..."
    return text


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
