"""What capturing needs of frames and code objects, on the traced thread.

Which frames are shown (:func:`hide_code`, a frame's own ``__tracebackhide__``), each code
object's facts looked up once (:func:`code_info`), a frame's variables copied without
leaving anything behind in it (:func:`frame_locals`), and the frames of a stack or a
traceback as (frame, line).

Thread safety: every function may be called from any thread.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from types import CodeType, FrameType, TracebackType
from typing import Any

from otrace.contexts.safe import PLAIN_KEY_IDS, plain_key, safe_repr
from otrace.contexts.speedups import local_names as _local_names

# Code objects of otrace's own wrappers, hidden from captured stacks.  Process-wide like the
# code objects themselves; only ever added to (a registry of constants, not runtime state).
HIDDEN: set[CodeType] = set()


def hide_code(*codes: CodeType) -> None:
    """Never show frames running these code objects (otrace's own wrappers)."""
    HIDDEN.update(codes)
    CODES.clear()  # cached verdicts may name these codes
    for forget in _FORGET:
        forget()


# What else keeps verdicts of codes shown or hidden (see on_hide); only ever added to.
_FORGET: list[Callable[[], None]] = []


def on_hide(forget: Callable[[], None]) -> None:
    """Call ``forget()`` whenever :func:`hide_code` registers codes (a cache of verdicts)."""
    _FORGET.append(forget)


# What capturing needs of a code object, looked up by ``id`` (hashing a code object hashes
# its bytecode and constants: slower than the rest of a frame's capture).  The entry keeps
# the code alive, so its id cannot be reused while cached; bounded by clearing.
# (code, filename, name, optimized, hidden: True / False / None = ask its __tracebackhide__,
#  its arguments' names as arg_names gives them, with a tuple for the list, the names of the
#  values otrace._frames reads from its frames -- see lazy.Raw -- or None without that module)
CodeInfo = tuple[
    CodeType,
    str,
    str,
    bool,
    "bool | None",
    "tuple[tuple[str, ...], str | None, str | None]",
    "tuple[str, ...] | None",
]
CODES: dict[int, CodeInfo] = {}
CODES_MAX = 20_000


def code_info(code: CodeType) -> CodeInfo:
    info = CODES.get(id(code))
    if info is not None and info[0] is code:
        return info
    if len(CODES) >= CODES_MAX:
        CODES.clear()
    hidden: bool | None = code in HIDDEN
    if not hidden and "__tracebackhide__" in code.co_varnames:
        hidden = None
    names, var, kw = arg_names_of(code)
    info = (
        code,
        code.co_filename,
        code.co_name,
        bool(code.co_flags & CO_OPTIMIZED),
        hidden,
        (tuple(names), var, kw),
        _local_names(code) if _local_names is not None else None,
    )
    CODES[id(code)] = info
    return info


def is_hidden(frame: FrameType) -> bool:
    hidden = code_info(frame.f_code)[4]
    if hidden is not None:
        return hidden
    try:
        return bool(frame_locals(frame).get("__tracebackhide__"))
    except Exception:
        return False


def snapshot(values: dict[str, Any], deep: bool) -> dict[str, Any]:
    """Copy captured values; with ``deep``, containers and ``__deepcopy__`` types deeply.

    If ``self`` gets a deep copy, the live object stays under ``self`` and the copy is
    stored as ``self_copy`` (as the original did).  A value that fails to copy is kept as is.
    """
    out = dict(values)
    if not deep:
        return out
    for name, value in values.items():
        if isinstance(value, (dict, list, set, tuple, bytearray)) or hasattr(
            type(value), "__deepcopy__"
        ):
            try:
                copied = copy.deepcopy(value)
            except Exception:
                continue
            if name == "self":
                out["self_copy"] = copied
            else:
                out[name] = copied
    return out


CACHES_LOCALS = sys.version_info < (3, 13)
CO_OPTIMIZED = 0x1
# From 3.13 a function frame's ``f_locals`` is a FrameLocalsProxy, and an outer frame's raw
# record keeps the proxy's ``items()`` -- a list of (name, value) pairs, a copy as good as a
# dict (what it holds cannot change) made into one when the record is built.  Per frame of
# three variables that is about half the instructions of the proxy's ``copy()`` (measured
# on 3.13.0: 1,540 vs 3,020 beyond reading ``f_locals``; dict(items()) 3,930): ``copy()`` is
# a dict update from a mapping that is no dict -- ``keys()``, then a search of the code's
# names for each key -- where ``items()`` reads the frame's variables once, in order.
PAIRS = not CACHES_LOCALS


def frame_locals(frame: FrameType) -> dict[str, Any]:
    """A copy of ``frame``'s variables that leaves nothing behind in the frame.

    Before 3.13, reading ``f_locals`` of a function frame fills a dict cached on the frame
    with the variables' current values, and it stays there until the frame returns: an
    object the function ``del``s later would live on.  So when that dict was made by this
    read (nobody else holds it), it is emptied again; the next read refills it anyway --
    unless :func:`may_empty` says no (a trace or profile function is set).
    """
    try:
        cached = frame.f_locals
        if not frame.f_code.co_flags & CO_OPTIMIZED:  # any mapping (module level, exec)
            return namespace_copy(cached)
        # a function's: a dict (before 3.13) or a FrameLocalsProxy, whose own copy is
        # quicker than dict()'s (which asks for keys, then each value)
        out = cached.copy()
    except Exception:
        return {}
    if (
        type(cached) is dict
        and sys.getrefcount(cached) == 3  # the frame's, ours, getrefcount's argument
        and may_empty()
    ):
        cached.clear()
    return out


def namespace_copy(mapping: Any) -> dict[Any, Any]:
    """A copy of the variables of a frame that runs at module level, in a class body or
    under ``exec``, running none of the program's code.

    Such a frame's variables are whatever mapping the program gave (``exec(code, g, l)``,
    a metaclass's ``__prepare__``): one that is no dict is not read -- its methods are the
    program's -- and is kept whole under ``__locals__``; a dict is read through dict's own
    methods, and a key that is not a plain value is kept as its text (storing it, or looking
    a name up beside it, would run its ``__hash__``/``__eq__``).
    """
    if not issubclass(type(mapping), dict):  # (type(): isinstance could ask __class__)
        return {"__locals__": mapping}
    if PLAIN_KEY_IDS.issuperset(map(id, map(type, dict.keys(mapping)))):  # the usual: names
        return dict(dict.items(mapping))
    return {plain_key(k): v for k, v in dict.items(mapping)}


_gettrace, _getprofile = sys.gettrace, sys.getprofile


def may_empty() -> bool:
    """Whether capture may empty the ``f_locals`` dicts it reads, now, on this thread.

    Not from 3.13 (no such dict), nor while a trace or profile function is set on this
    thread (pdb, a Python-level coverage tracer): the interpreter writes a frame's dict
    back into its variables after each call of one for that frame, so a capture made inside
    that call (pdb evaluating a traced function) would unbind (3.11) or set to None (3.12)
    every variable of the frame; and it refills the dict before each call anyway.
    """
    return CACHES_LOCALS and _gettrace() is None and _getprofile() is None


def format_args(frame: FrameType, limit: int = 200) -> str:
    """``(a=1, b='x')`` for the frame's arguments, each value bounded."""
    code = frame.f_code
    nargs = code.co_argcount + code.co_kwonlyargcount
    names = list(code.co_varnames[:nargs])
    flags = code.co_flags
    if flags & 0x04:  # CO_VARARGS
        names.append(code.co_varnames[nargs])
        nargs += 1
    if flags & 0x08:  # CO_VARKEYWORDS
        names.append(code.co_varnames[nargs])
    loc = frame_locals(frame)
    return "(" + ", ".join(f"{n}={safe_repr(loc.get(n), limit)}" for n in names if n in loc) + ")"


def arg_names(frame: FrameType) -> tuple[list[str], str | None, str | None]:
    """(positional argument names, ``*args`` name, ``**kwargs`` name) -- ``argvalues``."""
    return arg_names_of(frame.f_code)


def arg_names_of(code: CodeType) -> tuple[list[str], str | None, str | None]:
    """:func:`arg_names` of a frame running ``code``."""
    n = code.co_argcount + code.co_kwonlyargcount
    names = list(code.co_varnames[:n])
    var = kw = None
    if code.co_flags & 0x04:
        var = code.co_varnames[n]
        n += 1
    if code.co_flags & 0x08:
        kw = code.co_varnames[n]
    return names, var, kw


def outer_frames(frame: FrameType | None) -> list[tuple[FrameType, int]]:
    """``frame`` and its callers as (frame, line), innermost first, hidden frames left out."""
    out = []
    while frame is not None:
        if not is_hidden(frame):
            out.append((frame, frame.f_lineno))
        frame = frame.f_back
    return out


def traceback_frames(tb: TracebackType | None) -> list[tuple[FrameType, int]]:
    """The frames of a traceback as (frame, line), outermost first, hidden ones left out."""
    out = []
    codes = CODES
    while tb is not None:
        frame = tb.tb_frame
        code = frame.f_code
        # (is_hidden's verdict read from the cache inline: a traceback is mostly one frame)
        known = codes.get(id(code))
        hidden = known[4] if known is not None and known[0] is code else None
        if hidden is False or (hidden is None and not is_hidden(frame)):
            out.append((frame, tb.tb_lineno))
        tb = tb.tb_next
    return out
