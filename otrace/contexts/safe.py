"""``repr`` and ``str`` that never raise and never run away.

The traced program's objects may have a ``__repr__`` that raises, loops over a huge
structure or takes a lock; a debugger must show *something* and carry on.
"""

from __future__ import annotations

import builtins
from typing import Any

from otrace.contexts.piecewise import piecewise_repr, str_is_piecewise
from otrace.contexts.speedups import plain_repr as _plain_repr


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
    if _plain_repr is not None:  # (C: the plain values' repr, when that is what _brief gives)
        text = _plain_repr(obj, limit)
        if text is not None:
            return text
    text = _brief(obj, limit, 3)
    return text if len(text) <= limit else text[:limit] + "..."


_BRACKETS: dict[Any, tuple[str, str]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    dict: ("{", "}"),
    set: ("{", "}"),
    frozenset: ("{", "}"),
}
_ARGS: Any = BaseException.__dict__["args"]  # the slot itself, never a subclass's property
_PLAIN_SCALARS = (float, bool, type(None), complex)
# Types are looked up by id, never by the type itself: hashing or comparing a program's
# class calls its metaclass's __hash__/__eq__ -- program code.  These are the
# interpreter's own (static) types, so their ids never change or get reused.
_BRACKET_IDS: dict[int, tuple[str, str]] = {id(k): v for k, v in _BRACKETS.items()}
_PLAIN_SCALAR_IDS = frozenset(map(id, _PLAIN_SCALARS))
# every type _brief shows by its contents (the rest: by class and address, or as an
# exception), for callers that take a short cut for program objects (by id, as above)
BY_CONTENT_IDS = frozenset((id(str), id(int), id(bytes), *_PLAIN_SCALAR_IDS, *_BRACKET_IDS))
# scalars whose repr is always short (a float's is at most 24 characters)
_TINY = frozenset(map(id, (bool, type(None), float)))


def _brief(obj: Any, budget: int, depth: int) -> str:
    kind = type(obj)
    if kind is str:
        if len(obj) <= budget:
            return repr(obj)
        return repr(obj[:budget]) + "..."
    if kind is int:
        return repr(obj) if obj.bit_length() < 200 else "<big int>"
    if id(kind) in _PLAIN_SCALAR_IDS:
        return repr(obj)
    if kind is bytes:
        return repr(obj[:budget])
    brackets = _BRACKET_IDS.get(id(kind))
    if brackets is not None:
        if depth <= 0:
            return f"<{kind.__name__} of {len(obj)}>"
        depth -= 1
        is_dict = kind is dict
        parts: list[str] = []
        size = 1  # of everything so far: cut once past the budget
        # eleven items at most (the loop stops at the eleventh, which only says "...")
        for item in obj.items() if is_dict else obj:  # (exact types: their own methods)
            if size > budget or len(parts) == 10:
                parts.append("...")
                break
            # (the usual items, short strings and small scalars, without a call of _brief)
            if is_dict:
                key, value = item
                kind_ = type(key)
                if (kind_ is str and len(key) <= 40) or id(kind_) in _TINY:
                    text = repr(key) + ": "
                else:
                    text = _brief(key, 40, depth) + ": "
                kind_ = type(value)
                if (kind_ is str and len(value) <= 60) or id(kind_) in _TINY:
                    text += repr(value)
                else:
                    text += _brief(value, 60, depth)
            elif (type(item) is str and len(item) <= 60) or id(type(item)) in _TINY:
                text = repr(item)
            else:
                text = _brief(item, 60, depth)
            parts.append(text)
            size += len(text) + 2
        open_, close = brackets
        if kind is tuple and len(parts) == 1:
            return open_ + parts[0] + ",)"
        return open_ + ", ".join(parts) + close
    if issubclass(kind, BaseException):  # (isinstance could ask the object's __class__)
        args = _ARGS.__get__(obj)
        return f"{kind.__name__}(" + ", ".join(_brief(a, 100, depth - 1) for a in args[:3]) + ")"
    return object.__repr__(obj)


def plain_key(key: Any) -> Any:
    """``key`` if hashing and comparing it is the interpreter's own work (an exact str, int,
    float, bool, None, bytes or complex, or an exact tuple of them), else its :func:`brief`
    text.

    For dicts otrace makes from a program's mapping: storing or looking up a key of a
    program class (a ``str`` subclass too) runs its ``__hash__``/``__eq__``.  Never raises
    for a hashable key (the text of another is its class and address).
    """
    kind = type(key)
    if id(kind) in PLAIN_KEY_IDS or (
        kind is tuple and PLAIN_KEY_IDS.issuperset(map(id, map(type, key)))
    ):
        return key
    return brief(key, 200)


# Key types whose hash and equality are the interpreter's own (by id, see _BRACKET_IDS): a
# dict keyed only by them can be copied or looked into without running program code
PLAIN_KEY_IDS = frozenset(map(id, (str, int, float, bool, type(None), bytes, complex)))


_GETSET = type(type.__dict__["__dict__"])


def _instance_dict(obj: object) -> dict[Any, Any] | None:
    """``obj.__dict__`` when it is the interpreter's plain instance dict (no property runs)."""
    for klass in _MRO.__get__(type(obj)):
        entry = _DICT.__get__(klass).get("__dict__")
        if entry is not None:
            if type(entry) is not _GETSET:
                return None
            ns = entry.__get__(obj)
            return ns if type(ns) is dict else None
    return None


def stored_text(obj: object, limit: int = 300) -> str:
    """A bounded text for a value about to be stored, running no code of the program's.

    Like :func:`brief`, except that an instance with a plain ``__dict__`` is shown by its
    class and attributes -- ``Point(x=3, y=6, tags=['a', 'b'])`` -- which says more than
    ``<Point object at 0x...>`` and is what most ``__repr__`` methods show.  For the writer
    thread, where the program's own ``__repr__`` must not run.  Never raises.
    """
    try:
        kind = type(obj)
        if (
            id(kind) in _BRACKET_IDS
            or id(kind) in _PLAIN_IDS
            or kind is complex
            or issubclass(kind, BaseException)
        ):
            return brief(obj, limit)
        if id(kind) in _OWN_REPR:  # the interpreter's repr, which reads only names
            return repr(obj)[:limit]
        # only instances of classes defined in Python: a function's or module's __dict__
        # says nothing about it
        ns = _instance_dict(obj) if _FLAGS.__get__(kind) & _HEAPTYPE else None
        if ns is None:
            return brief(obj, limit)
        items = [(k, v) for k, v in list(ns.items())[:9] if type(k) is str]
        parts = [f"{k}={_brief(v, 60, 2)}" for k, v in items[:8]]
        if len(items) > 8:
            parts.append("...")
        text = f"{_QUAL.__get__(kind)}({', '.join(parts)})"
    except BaseException:  # noqa: B036 - a stored text must never fail the writer
        return "<object>"
    return text if len(text) <= limit else text[:limit] + "..."


_QUAL: Any = type.__dict__["__qualname__"]
_FLAGS: Any = type.__dict__["__flags__"]
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class statement made it
_OWN_REPR = frozenset(
    map(id, (type, type(len), type(_instance_dict), type(_instance_dict.__code__)))
)  # exact classes, functions, built-in functions and code objects (by id, see _BRACKET_IDS)


def exc_text(exc: BaseException, limit: int = 300) -> str:
    """``str(exc)`` for the usual exception (its string arguments), without its ``__str__``."""
    args = _ARGS.__get__(exc)
    text = ", ".join(a if type(a) is str else brief(a, 100) for a in args[:3])
    return text if len(text) <= limit else text[:limit] + "..."


# Values whose ``str``/``repr`` is the interpreter's own: an exception holding only these
# formats without running any code of the program's.
_PLAIN = (str, int, float, bool, type(None), bytes)
_PLAIN_IDS = frozenset(map(id, _PLAIN))  # (by id, see _BRACKET_IDS)
# Built-in exceptions whose __str__ formats fields besides the arguments (the slots
# themselves, never a subclass's property): str() of one runs no program code only while
# those hold plain values -- OSError's file names, SyntaxError's msg (str() of it), a
# Unicode*Error's encoding and reason (str() of them) and object
_STR_FIELDS: tuple[tuple[type, tuple[Any, ...]], ...] = tuple(
    (c, tuple(c.__dict__[f] for f in fields))
    for c, fields in (
        (OSError, ("filename", "filename2")),
        (SyntaxError, ("msg", "filename", "lineno")),
        (UnicodeEncodeError, ("encoding", "object", "reason", "start", "end")),
        (UnicodeDecodeError, ("encoding", "object", "reason", "start", "end")),
        (UnicodeTranslateError, ("object", "reason", "start", "end")),
    )
)
_FIELDED = tuple(c for c, _ in _STR_FIELDS)
_MRO: Any = type.__dict__["__mro__"]
_NAME: Any = type.__dict__["__name__"]
_DICT: Any = type.__dict__["__dict__"]


def _builtin_str(cls: type) -> bool:
    """True if ``cls``'s ``__str__`` is one of the interpreter's (no Python-level override)."""
    known = _BUILTIN_STR.get(id(cls))  # (by id: a metaclass's __hash__ is program code)
    if known is not None:
        return known
    found = False
    for klass in _MRO.__get__(cls):
        method = _DICT.__get__(klass).get("__str__")
        if method is not None:
            found = type(method) is _WRAPPER
            break
    if id(cls) in _BUILTIN_EXC:  # (a program class could gain a __str__ later: not cached)
        _BUILTIN_STR[id(cls)] = found
    return found


# The interpreter's own exception classes (their __str__ never changes): verdicts cached.
_BUILTIN_EXC = frozenset(
    id(c) for c in vars(builtins).values() if isinstance(c, type) and issubclass(c, BaseException)
)  # (static types: their ids are theirs for good)
_BUILTIN_STR: dict[int, bool] = {}
_WRAPPER = type(object.__str__)
# id -> name of the interpreter's exception classes that are static types (they and their
# __str__ cannot change) with its own __str__, not OSError's (whose fields need a look):
# exc_line's shortcut, a third of its instructions for ``ValueError(3)``
_STATIC_EXC: dict[int, str] = {
    id(c): c.__name__
    for c in vars(builtins).values()
    if isinstance(c, type)
    and issubclass(c, BaseException)
    and not _FLAGS.__get__(c) & _HEAPTYPE
    and not issubclass(c, _FIELDED)
    and _builtin_str(c)
}


def _plain_fields(exc: BaseException, cls: type) -> bool:
    """Whether the fields ``cls``'s built-in __str__ formats (see _STR_FIELDS) are plain
    (True for a class without such fields)."""
    if issubclass(cls, _FIELDED):
        for base, slots in _STR_FIELDS:
            if issubclass(cls, base):
                return all(id(type(slot.__get__(exc))) in _PLAIN_IDS for slot in slots)
    return True


def exc_line(exc: BaseException, limit: int = 500) -> str:
    """``Type: message`` for ``exc``, bounded, running no code of the program's.

    The message is ``str(exc)`` when that is the interpreter's own formatting of plain
    values (``ValueError(3)``, ``KeyError('k')``, ``OSError(2, 'No such file')``); for an
    exception class with its own ``__str__``, or arguments that are program objects, it is
    made from the arguments with :func:`brief` (the program's ``__str__`` runs only when an
    operator renders the full traceback text).  For recording (traced thread) and the
    writer thread.  Never raises.
    """
    try:
        cls = type(exc)
        args = _ARGS.__get__(exc)
        plain = not args or (
            id(type(args[0])) in _PLAIN_IDS
            if len(args) == 1  # (the usual: one argument, without a map)
            else _PLAIN_IDS.issuperset(map(id, map(type, args)))
        )
        text = None
        name = _STATIC_EXC.get(id(cls))
        if name is not None:  # the usual: the interpreter's own class, its own __str__
            if plain:
                text = str(exc)
        else:
            name = _NAME.__get__(cls)
            if plain and _builtin_str(cls) and _plain_fields(exc, cls):
                text = str(exc)
        if text is None:
            text = exc_text(exc, limit)
    except BaseException:  # noqa: B036 - never let describing an exception fail
        return "<exception>"
    line = f"{name}: {text}" if text else name
    return line if len(line) <= limit else line[:limit] + "..."


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
