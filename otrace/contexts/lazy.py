"""Frame records built when first read: :class:`LazyFrame`, :class:`LazyTrc`, :func:`materialise`.

Capturing a chain of frames runs on the traced thread for every recorded exception, so it
does only what must happen then (see :func:`otrace.contexts.capture.build_chain`): per outer
frame it keeps a *raw record* -- the code's cached facts, the line, the variables (copied
if the frame still runs: its caller will change them; the finished frame's own dict
otherwise, since nothing changes it any more), the module's name and the linecache entry
of its file (the source as it is now).  The browsable records -- one
:class:`~otrace.contexts.record.FrameContext` per frame with its ``__trc``, line tuple,
source slice and ``__up``/``__down`` links, and the root's ``framestack`` and ``where`` --
are built from those the first time anybody reads the chain.

The root's ``__up`` is a :class:`LazyFrame` standing for the whole outer chain: a
``FrameContext`` whose dict is empty (but for the ``__down`` link the root makes) until it
is built.  Building fills it in place -- it becomes the root's caller's frame, so the
root's key order and every reference to it stay as they are -- links the other frames
above it and turns its class into a plain ``FrameContext``.  The root's ``__trc`` is a
:class:`LazyTrc` whose ``framestack`` and ``where`` are ``None`` placeholders (keeping the
key order) until either is read; then they are made from the (built) chain and its class
becomes :class:`TrcDict`, a plain dict.  Neither holds the root: an evicted context is
freed by reference counting, built or not.

Readers: the Python-level reads of a ``LazyFrame`` (``[]``, ``get``, ``in``, ``len``,
iteration, ``keys``/``items``/``values``, ``copy``, ``repr``, pickling) build it first, as
reads of a ``LazyTrc``'s two entries or of all its values do.  A reader that reads a
context through the unbound ``dict`` methods (safe mode does, on purpose: a program's dict
subclass may override them) calls :func:`materialise` on the value first.

Thread safety: building runs on whichever thread reads first (a shell thread, the
traceback page) -- on the traced thread only when a recording step itself reads the chain
(an eager ``build_chain``, a program variable that holds a context).  The ``pickle_file``
freeze does not build: it hands the raw records to the writer (:func:`raw_records`), which
makes the stored frames' ``__trc`` from them (:func:`raw_trc`).  It runs no program code: the records are made outside any lock (two
threads may both make them; only one result is installed), and :data:`_INSTALL` is held
only while the winner's records are put in place (dict stores of otrace's own objects).
A source file not in linecache when captured is read when built, outside the lock.
"""

from __future__ import annotations

import linecache
import threading
from collections.abc import Iterator
from types import CodeType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_keys, dict_values

from otrace.contexts.record import TRC_TYPES, FrameContext
from otrace.contexts.speedups import UNBOUND

# (code info as otrace.contexts.capture caches it, line, variables or None, module name,
# linecache entry of the file or None) -- one per outer frame, outermost first.  A frame
# still running keeps its ``f_lasti`` (>= 0: it is executing a call; reading ``f_lasti`` is a
# field, the line number a search of the code's line table, done when built: see line_at), a
# frame whose line is known (a traceback's) ``-1 - line``.  The variables are a dict, or
# from 3.13 a function frame's list of (name, value) pairs (see frames.PAIRS): read them
# through :func:`variables`; or, made by the C loop (otrace/_frames.c), a tuple of the
# values of the names in the code info's last item (no tuple of names per frame: the code's
# own), where a value :data:`UNBOUND` stands for a name not shown.
Raw = tuple[
    tuple,
    int,
    "dict[str, Any] | list[tuple[str, Any]] | tuple[Any, ...] | None",
    Any,
    Any,
]

# Held only while a built chain is put in place: plain dict stores, no program code, no call.
_INSTALL = threading.Lock()
_MISSING = object()
_MAX_CHAIN = 100_000
_new_dict = dict.__new__


def line_at(code: CodeType, lasti: int) -> int:
    """The line number ``f_lineno`` gives for a frame of ``code`` at ``f_lasti`` (any thread)."""
    key = (id(code), lasti)
    known = _LINES.get(key)
    if known is not None and known[0] is code:
        return known[1]
    line: int | None = code.co_firstlineno
    if lasti >= 0:
        for start, end, number in code.co_lines():
            if start <= lasti < end:
                line = number
                break
    if len(_LINES) > 50_000:
        _LINES.clear()
    result = line if line is not None else code.co_firstlineno
    _LINES[key] = (code, result)
    return result


# (id(code), f_lasti) -> (code, line): the entry keeps the code alive, so its id stays its own
_LINES: dict[tuple[int, int], tuple[CodeType, int]] = {}


def variables(raw: Raw) -> dict[str, Any]:
    """A raw record's variables as a dict (a new one unless kept as one; empty if none)."""
    return loc_dict(raw[0], raw[2]) or {}


def loc_dict(cinfo: tuple, loc: Any) -> Any:
    """Variables kept in any of a raw record's forms (see :data:`Raw`; ``cinfo``: the
    record's code info) as a dict, or None."""
    return loc if loc is None or type(loc) is dict else dict(loc_items(cinfo, loc))


def loc_items(cinfo: tuple, loc: Any) -> Any:
    """(name, value) of variables kept in any of a raw record's forms (not None; ``cinfo``:
    the record's code info): a list, or a dict's items listed -- a finished frame's dict is
    the program's to change meanwhile."""
    kind = type(loc)
    if kind is tuple:  # the values of the code's names, from the C loop
        return [(n, v) for n, v in zip(cinfo[6], loc, strict=True) if v is not UNBOUND]
    if kind is list:  # (capture's own list or dict: no program code runs)
        return loc
    return list(dict.items(loc))


def _lineno(cinfo: tuple, line: int) -> int:
    return line_at(cinfo[0], line) if line >= 0 else -1 - line


def source_slice(filename: str, lineno: int, entry: Any, context: int) -> list[str] | None:
    """Up to ``context`` lines centred on ``lineno`` from linecache ``entry`` (a full entry:
    its list as it was when captured), else from linecache now (None if no source)."""
    if context <= 0:
        return None
    start = lineno - context // 2
    if start < 1:
        start = 1
    if entry is not None and len(entry) != 1:
        lines = entry[2]
    else:
        try:
            lines = linecache.getlines(filename)
        except Exception:  # a loader's get_source may raise anything
            return None
    return lines[start - 1 : start - 1 + context] or None


class LazyFrame(FrameContext):
    """The outer frames of a captured chain, built into ``FrameContext`` records when read.

    Made by capture only (``_pending`` holds the raw records); any thread may read it, and
    every Python-level read builds it first (module docstring).  Writes (``[k] = v``,
    ``pop``) do not build: capture and the store's ``unlink`` use them on the traced thread.
    """

    __slots__ = ()  # FrameContext's layout: a built one's class becomes FrameContext

    def __getitem__(self, key: Any) -> Any:
        build(self)
        return dict.__getitem__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        build(self)
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        build(self)
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[Any]:
        build(self)
        return dict.__iter__(self)

    def __len__(self) -> int:
        build(self)
        return dict.__len__(self)

    def keys(self) -> dict_keys[Any, Any]:
        build(self)
        return dict.keys(self)

    def items(self) -> dict_items[Any, Any]:
        build(self)
        return dict.items(self)

    def values(self) -> dict_values[Any, Any]:
        build(self)
        return dict.values(self)

    def copy(self) -> dict[str, Any]:
        build(self)
        return dict.copy(self)

    def __repr__(self) -> str:
        build(self)
        return FrameContext.__repr__(self)

    def __reduce_ex__(self, protocol: Any) -> Any:
        build(self)
        return FrameContext.__reduce_ex__(self, protocol)


class TrcDict(dict):
    """A root's ``__trc`` whose chain was captured raw, once its ``framestack`` and ``where``
    are made: a plain dict (its own class only so that a :class:`LazyTrc` can become one),
    pickled as one."""

    # (a slot, not an attribute: no instance __dict__ made per context; None once filled)
    __slots__ = ("_pending",)
    _pending: LazyFrame | None

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (dict, (dict(dict.items(self)),))


_LAZY_KEYS = frozenset(("framestack", "where"))


class LazyTrc(TrcDict):
    """A root's ``__trc`` while ``framestack`` and ``where`` are ``None`` placeholders (made
    from the chain, built first, when either is read: ``[]``/``get`` of those keys, or any
    read of all values -- ``items``, ``values``, ``copy``, ``==``, ``repr``, pickling, or a
    copy through ``dict(...)``).  It holds the root's :class:`LazyFrame`, never the root (which
    holds it).  Other entries read and change as in any dict; writes build nothing.
    """

    __slots__ = ()

    def __getitem__(self, key: Any) -> Any:
        if key in _LAZY_KEYS:
            fill(self)
        return dict.__getitem__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        if key in _LAZY_KEYS:
            fill(self)
        return dict.get(self, key, default)

    def __iter__(self) -> Iterator[Any]:  # (so dict(trc) reads values through __getitem__)
        return dict.__iter__(self)

    def items(self) -> dict_items[Any, Any]:
        fill(self)
        return dict.items(self)

    def values(self) -> dict_values[Any, Any]:
        fill(self)
        return dict.values(self)

    def copy(self) -> dict[str, Any]:
        fill(self)
        return dict.copy(self)

    def __eq__(self, other: object) -> bool:
        fill(self)
        if type(other) is LazyTrc:
            fill(other)
        return dict.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fill(self)
        return dict.__repr__(self)

    def __reduce_ex__(self, protocol: Any) -> Any:
        fill(self)
        return (dict, (dict(dict.items(self)),))


# (a new context fills in its ``__trc`` with dict's own setdefault: these two keep it)
TRC_TYPES.extend((TrcDict, LazyTrc))


def materialise(node: Any) -> None:
    """Build whatever of ``node`` was captured raw (see module docstring): a
    :class:`LazyFrame` or :class:`LazyTrc` itself, or a frame's ``__up`` and ``__trc``.

    ``node`` may be anything (readers call it on every value they are about to read through
    the unbound ``dict`` methods).  Reads ``type()`` and dict entries: no program code.  Any
    thread.
    """
    t = type(node)
    if t is LazyFrame:
        build(node)
    elif t is LazyTrc:
        fill(node)
    elif issubclass(t, FrameContext):  # (only otrace's own: a lookup in a program's dict
        # could meet a key whose __eq__ is program code)
        up = dict.get(node, "__up")
        if type(up) is LazyFrame:
            build(up)
        trc = dict.get(node, "__trc")
        if type(trc) is LazyTrc:
            fill(trc)


def _stack(trc: dict[str, Any], up: Any) -> tuple[list[Any], str]:
    """(framestack, where) of a root whose ``__trc`` is ``trc`` and ``__up`` is ``up``."""
    lines = [dict.get(trc, "frame")]
    node = up
    for _ in range(_MAX_CHAIN):
        if not isinstance(node, FrameContext):
            break
        if type(node) is LazyFrame:
            build(node)
        info = dict.get(node, "__trc")
        lines.append(info.get("frame") if isinstance(info, dict) else None)
        node = dict.get(node, "__up")
    lines.reverse()
    return lines, "-->".join([f[2] if type(f) is tuple else "?" for f in lines])


def fill_stack(root: dict[str, Any], trc: dict[str, Any]) -> None:
    """Set ``trc``'s ``framestack`` and ``where`` from the chain above ``root`` (a chain
    built at capture; traced thread)."""
    trc["framestack"], trc["where"] = _stack(trc, dict.get(root, "__up"))


def fill(trc: LazyTrc) -> None:
    """Make ``trc``'s ``framestack`` and ``where`` (building the chain), once; any thread."""
    up = trc._pending
    if up is None:
        return
    framestack, where = _stack(trc, up)
    # (no call under the lock -- plain stores, which TrcDict does not override: a collection
    # or signal handler run at a call could run a finalizer filling another trc here)
    with _INSTALL:
        if trc._pending is not up:
            return
        trc["framestack"] = framestack
        trc["where"] = where
        trc._pending = None
        trc.__class__ = TrcDict  # type: ignore[assignment]


def lazy_trc(
    up: LazyFrame, frame: Any, funcname: str, module: Any, argvalues: Any = _MISSING
) -> LazyTrc:
    """The :class:`LazyTrc` of a root whose ``__up`` is ``up`` (traced thread), with
    ``argvalues`` after ``where`` if given."""
    # (keywords: made by dict's own __init__ in one call, the literal's key order; LazyTrc
    # overrides no method that filling calls)
    out = LazyTrc(frame=frame, funcname=funcname, module=module, framestack=None, where=None)
    if argvalues is not _MISSING:
        dict.__setitem__(out, "argvalues", argvalues)
    out._pending = up
    return out


def lazy_root(
    raws: list[Raw], context: int, frame: Any, funcname: str, module: Any, argvalues: Any
) -> tuple[LazyFrame, LazyTrc]:
    """``(pending(raws, context), lazy_trc(that, frame, funcname, module, argvalues))`` in
    one call: a captured exception's root (traced thread)."""
    node = _new_dict(LazyFrame)
    node._pending = (raws, context)  # type: ignore[attr-defined]
    out = LazyTrc(
        frame=frame,
        funcname=funcname,
        module=module,
        framestack=None,
        where=None,
        argvalues=argvalues,
    )
    out._pending = node
    return node, out


def raw_records(root: Any) -> tuple[list[Raw], int] | None:
    """(raw records, source lines per frame) of ``root``'s chain while it is not built, else
    None.  For the ``pickle_file`` freeze, which hands them to the writer thread as they are
    (they never change).  Any thread."""
    up = dict.get(root, "__up")
    if type(up) is not LazyFrame:
        return None
    return up.__dict__.get("_pending")  # (None if built meanwhile)


def raw_trc(raw: Raw, context: int) -> dict[str, Any]:
    """The ``__trc`` a built frame of ``raw`` has (the writer thread makes it; any thread)."""
    cinfo, line, _, module, entry = raw
    filename, name, lineno = cinfo[1], cinfo[2], _lineno(cinfo, line)
    info = (filename, lineno, name, source_slice(filename, lineno, entry, context))
    return {"frame": info, "funcname": name, "module": module}


def is_built(node: FrameContext) -> bool:
    """False while ``node`` is a :class:`LazyFrame` not built yet (any thread)."""
    return type(node) is not LazyFrame


def build(node: FrameContext) -> None:
    """Build ``node``'s chain from its raw records, once (any thread; idempotent)."""
    if type(node) is not LazyFrame:  # (reading __dict__ would give a built frame one)
        return
    pending = node.__dict__.get("_pending")
    if pending is None:
        return
    raws, context = pending
    # made outside the lock: linecache may read a file (or ask a module's loader)
    made: list[tuple[dict[str, Any] | None, dict[str, Any]]] = []
    for cinfo, line, loc, module, entry in raws:
        filename, name, lineno = cinfo[1], cinfo[2], _lineno(cinfo, line)
        info = (filename, lineno, name, source_slice(filename, lineno, entry, context))
        made.append((loc_dict(cinfo, loc), {"frame": info, "funcname": name, "module": module}))
    previous: FrameContext | None = None
    for loc, trc in made[:-1]:
        frame = _new_dict(FrameContext)
        if loc:
            frame.update(loc)
        frame["__trc"] = trc
        if previous is not None:
            frame["__up"] = previous
            previous["__down"] = frame
        previous = frame
    loc, trc = made[-1]
    with _INSTALL:
        if node.__dict__.get("_pending") is not pending:
            return  # another thread installed its build meanwhile
        # the same key order as a frame built at capture: locals, __trc, __up, __down
        down = dict.pop(node, "__down", _MISSING)
        if loc:
            dict.update(node, loc)
        dict.__setitem__(node, "__trc", trc)
        if previous is not None:
            dict.__setitem__(node, "__up", previous)
            previous["__down"] = node
        if down is not _MISSING:
            dict.__setitem__(node, "__down", down)
        node.__dict__.pop("_pending", None)
        node.__class__ = FrameContext  # type: ignore[assignment]  # built: plain dict reads now


def pending(raws: list[Raw], context: int) -> LazyFrame:
    """A :class:`LazyFrame` for ``raws`` (outermost first; not empty), ``context`` source
    lines per frame.  It holds no reference to the root (which holds it): an unlinked
    context is freed without the cycle collector.  Traced thread."""
    node = _new_dict(LazyFrame)
    node._pending = (raws, context)  # type: ignore[attr-defined]
    return node
