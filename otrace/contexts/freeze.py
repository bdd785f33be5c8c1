"""Freezing a live trace context for the pickle writer: the part the traced thread pays.

:func:`freeze_context` runs on the thread that created the context and copies only what can
still change: the root frame's dict and ``__trc`` (otrace adds a return value or a release
reason later), the built-in containers among the program's values (``dict``, ``list``,
``tuple``, ``set``, down to ``max_depth`` and at most ``max_items`` elements each, so later
changes to them do not leak into the record) and the dicts of frames holding such
containers.  Every other frame is handed over by reference (capture made it, nothing
changes it), as are what capturing made and never changes again (the frame lines,
``framestack``, the lazy texts) and other objects.  A chain still captured raw
(:mod:`otrace.contexts.lazy`, the usual case) goes as capture's own list of raw records,
which never changes: one loop over the frames' variables finds the few frames holding a
container that may still change, and only their variables are copied -- no tuple or dict
per frame for the program's collector to scan while the snapshot waits.  It runs no
program code: type checks look at ``type()`` only, a program's class is never hashed or
compared (see ``_PLAIN``), and a dict keyed by program objects is copied without hashing
them again.  The :class:`Snapshot` it makes waits in the writer's
queue until :func:`otrace.contexts.sanitize.encode` turns it into bytes on the writer's
thread.  Three steps have C versions in :mod:`otrace._speedups` (``frames_holding``,
``freeze_value``, ``freeze_entries``: the scan of the raw frames, the copy of a value, the
copy of a ``__trc``), which give what the Python ones here give (tests/speedups) at about
half the freeze's instructions.

Thread safety: any thread (in practice the traced one); no shared state.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import Any

from otrace.contexts.lazy import Raw, loc_items, materialise, raw_records, variables
from otrace.contexts.lazytext import LazyText
from otrace.contexts.record import FrameContext, TraceContext
from otrace.contexts.safe import PLAIN_KEY_IDS, plain_key, safe_repr
from otrace.contexts.speedups import frames_holding as _c_frames_holding
from otrace.contexts.speedups import freeze_entries as _c_freeze_entries
from otrace.contexts.speedups import freeze_value as _c_freeze_value
from otrace.contexts.speedups import holds_watched as _c_holds_watched
from otrace.contexts.unpickle import Unpicklable

__all__ = ["DEFAULT_LIMITS", "Limits", "Snapshot", "freeze_context"]

LINKS = ("__up", "__down", "__trc")
# ``exc_context`` is stored as this marker: decode renders it from the stored frames
REPORT_MARK = "<otrace: exc_context, rendered when read>"


@dataclass(frozen=True)
class Limits:
    """How far a context is copied and how big one stored value may be."""

    max_depth: int = 6
    max_items: int = 10_000
    max_value_bytes: int = 256 * 1024
    repr_limit: int = 300


DEFAULT_LIMITS = Limits()


# -- step 1: on the creating thread ----------------------------------------------------------


@dataclass(slots=True)
class Snapshot:
    """A context frozen at creation: metadata plus the frame chain, outermost first.

    ``frames`` is one flat tuple, each frame's values then its ``__trc``: snapshots wait in
    the writer's queue, and every container they add is one more object for each garbage
    collection of the program to scan (hence slots, and no tuple per frame).  A chain still
    captured raw (:mod:`otrace.contexts.lazy`) is not copied at all: ``raws`` is capture's
    own list of raw records (it never changes), ``frames`` only the root's pair, and
    ``copies`` maps the index of each raw frame whose variables hold a container that may
    still change to its variables with those copied (None: no such frame).
    """

    key: str
    kind: str
    name: str
    ctxid: str
    timestamp: str
    created: float
    pid: int
    frames: tuple[Any, ...]
    root: int
    raws: list[Raw] | None = None
    context: int = 0
    copies: dict[int, dict[Any, Any]] | None = None

    def pairs(self) -> list[tuple[Any, Any]]:
        """(values, trc) of each frame, outermost first; a raw frame's trc is (raw record,
        context lines), which the writer makes a ``__trc``
        (:func:`~otrace.contexts.lazy.raw_trc`)."""
        frames = self.frames
        out = list(zip(frames[::2], frames[1::2], strict=True))
        raws = self.raws
        if raws is None:
            return out
        copies = self.copies or {}
        context = self.context
        above = [
            (copies[i] if i in copies else variables(raw), (raw, context))
            for i, raw in enumerate(raws)
        ]
        return above + out


# A type is looked up in the sets below only if its metaclass is exactly ``type`` (the test
# ``type(t) is _PLAIN``, one specialised call): looking a class up in a set hashes it, and
# maybe compares it, which runs its metaclass's ``__hash__``/``__eq__`` -- program code,
# here on the traced thread.  Every member of these sets has ``type`` as its metaclass, so a
# class with a metaclass of its own is simply none of them.  Measured per freeze of a
# 20-frame exception context (benchmarks/freeze_types.py --instructions): +12 % instructions
# over the unguarded lookups on 3.11 (+13 % on 3.13); ``id(t)`` lookups instead +36 %.
_PLAIN = type
# Exact built-in containers the freeze copies (a frozenset cannot change)
_CONTAINERS = frozenset((dict, list, tuple, set))
# Values the freeze keeps as they are: nothing in them can change.
_IMMUTABLE = frozenset((int, float, bool, type(None), complex, str, bytes))
# ``__trc`` entries capturing makes and never changes afterwards (tuples, lists and texts of
# its own): kept by reference.  Everything else in ``__trc`` is frozen like a value.
_MADE = frozenset(
    (
        "frame",
        "framestack",
        "where",
        "argvalues",
        "funcname",
        "module",
        "exception",
        "exc_chain",
        "exc_stack",
        "exc_context",
        "stack",
        "thread",
        "id",
        "context",
        "argstr",
        "task",
        "relation",
    )
)


def _placeholder(obj: FrameContext, limits: Limits) -> Unpicklable:
    """What a trace context among the values is stored as (C's freeze_value asks it too)."""
    cls = type(obj)
    return Unpicklable(
        cls.__name__, cls.__module__, safe_repr(obj, limits.repr_limit), "another trace context"
    )


def _py_freeze(obj: Any, depth: int, limits: Limits, memo: dict[int, Any]) -> Any:
    """``obj`` with its built-in containers copied (memo: id -> copy); ``_freeze`` is
    ``otrace._speedups.freeze_value`` when built, which gives the same."""
    cls = type(obj)
    if type(cls) is not _PLAIN or cls not in _CONTAINERS:
        if issubclass(cls, FrameContext):
            return _placeholder(obj, limits)
        return obj  # a frozenset, a scalar, or an object kept by reference
    done = memo.get(id(obj))
    if done is not None:
        return done
    if depth >= limits.max_depth or len(obj) > limits.max_items:
        return obj
    depth += 1
    immutable, plain = _IMMUTABLE, _PLAIN
    if cls is dict:
        items = list(obj.items())
        if not PLAIN_KEY_IDS.issuperset(map(id, map(type, obj))):
            # storing under a program object's key would run its __hash__ (and __eq__):
            # a shallow copy (the interpreter reuses the stored hashes) is as far as it goes
            shallow = obj.copy()
            memo[id(obj)] = shallow
            return shallow
        out: Any = {}
        memo[id(obj)] = out
        for k, v in items:
            t = type(v)
            out[k] = (
                v if type(t) is plain and t in immutable else _py_freeze(v, depth, limits, memo)
            )
        return out
    if cls is list or cls is tuple:
        copied: list[Any] = []
        if cls is list:
            memo[id(obj)] = copied  # before its items: a list may hold itself
        add = copied.append
        for v in obj:
            t = type(v)
            add(v if type(t) is plain and t in immutable else _py_freeze(v, depth, limits, memo))
        if cls is list:
            return copied
        # a tuple of what did not need copying is itself safe to keep
        out = obj if all(map(operator.is_, copied, obj)) else tuple(copied)
    else:
        out = set(obj)  # elements of sets are hashable, usually immutable
    memo[id(obj)] = out
    return out


# (C's freeze_value: the same copy at about a tenth of the instructions.  It takes first
# the context class, the placeholder's maker and the names of the two limits it reads.)
_HOW = (FrameContext, _placeholder, "max_depth", "max_items")
_freeze: Any = _py_freeze if _c_freeze_value is None else functools.partial(_c_freeze_value, _HOW)


_CONTEXTS = frozenset((FrameContext, TraceContext))


def _unchanging(frame: dict[Any, Any]) -> bool:
    """True if nothing among ``frame``'s values can change or needs a placeholder: no
    built-in container (a tuple only of such values is fine), no trace context, no cause."""
    containers, plain = _CONTAINERS, _PLAIN
    for k, v in dict.items(frame):
        t = type(v)
        if type(t) is not plain:
            continue  # a metaclass of its own: neither a built-in container nor a context
        if t in containers:
            if k == "__trc":
                continue
            if t is not tuple:
                return False
            watch = _CONTAINERS_OR_CONTEXTS
            for x in v:
                t = type(x)
                if type(t) is plain and t in watch:
                    return False
        elif t in _CONTEXTS and k not in LINKS:
            return False
    return True


_CONTAINERS_OR_CONTEXTS = _CONTAINERS | _CONTEXTS


def _py_trc_copy(
    trc: dict[Any, Any], skip: frozenset[str], limits: Limits, memo: dict[int, Any]
) -> dict[Any, Any]:
    """A copy of a frame's ``__trc`` from dict's own items (a root's framestack/where still to
    be made stay placeholders: encode makes them, on the writer thread; see
    otrace.contexts.lazy) with its built-in containers frozen, but for those under a key (an
    exact str) in ``skip``.  ``_trc_copy`` is ``otrace._speedups.freeze_entries`` when
    built, which gives the same, or None where a key is no plain one (then this runs)."""
    containers, plain = _CONTAINERS, _PLAIN
    out = trc.copy() if type(trc) is dict else dict(list(dict.items(trc)))
    for k, v in list(out.items()):
        t = type(v)
        if type(t) is plain and t in containers and not (type(k) is str and k in skip):
            out[k] = _freeze(v, 1, limits, memo)
    return out


_trc_copy: Any = (
    _py_trc_copy if _c_freeze_entries is None else functools.partial(_c_freeze_entries, _HOW)
)


def _frame_values(
    frame: FrameContext, limits: Limits, memo: dict[int, Any], root: bool = False
) -> tuple[dict, dict]:
    """(values, trc) of one frame for the writer: copies of what can change; the frame's
    own dicts when nothing in them can (the writer leaves the links out).  The root's are
    always copied: otrace adds to them later (a return value, a release reason)."""
    trc = frame.get("__trc")
    if not isinstance(trc, dict):
        trc = {}
    elif root or not trc.keys() <= _MADE:
        copy = _trc_copy(trc, _MADE, limits, memo)
        trc = copy if copy is not None else _py_trc_copy(trc, _MADE, limits, memo)
    if not root and _unchanging(frame):
        return frame, trc
    containers, plain = _CONTAINERS, _PLAIN
    values = {}
    for k, v in list(frame.items()):
        if type(k) is not str:  # (a program's key: before anything hashes or compares it)
            k = plain_key(k)
        t = type(v)
        if type(t) is plain and t in containers:
            if k != "__trc":
                values[k] = _freeze(v, 1, limits, memo)
        elif k in _LINKS_OR_CAUSES:  # (one set lookup for the usual variable)
            if k in CAUSES:
                values[k] = _freeze_cause(v, limits, memo)
        elif issubclass(type(v), FrameContext):
            values[k] = _freeze(v, 1, limits, memo)
        else:
            values[k] = v
    return values, trc


# A chained exception (``__cause__``/``__context__``, see otrace.contexts.chain) is a frame
# chain of its own: stored as plain data under a marker key, rebuilt by decode.
CAUSES = ("__cause__", "__context__")
CHAIN_MARK = "__otrace_frames__"
_LINKS_OR_CAUSES = frozenset(LINKS + CAUSES)


def _freeze_cause(node: Any, limits: Limits, memo: dict[int, Any]) -> Any:
    if not issubclass(type(node), FrameContext):
        return _freeze(node, 1, limits, memo)
    chain: list[FrameContext] = []
    materialise(node)
    while isinstance(node, FrameContext) and node not in chain:
        chain.append(node)
        node = node.get("__up")
    # copied whole (rare; and the writer reads a cause's frames only as plain data)
    return {CHAIN_MARK: [_frame_values(f, limits, memo, True) for f in reversed(chain)]}


def _chain(ctx: TraceContext) -> tuple[list[FrameContext], int]:
    """The frame chain through ``__up``/``__down``, outermost first, and the root's index."""
    ups: list[FrameContext] = []
    seen = {id(ctx)}
    add = seen.add
    materialise(ctx)  # frames captured raw are built here, on the creating thread
    node = ctx.get("__up")
    while isinstance(node, FrameContext) and id(node) not in seen:
        add(id(node))
        ups.append(node)
        node = node.get("__up")
    downs: list[FrameContext] = []
    node = ctx.get("__down")
    while isinstance(node, FrameContext) and id(node) not in seen:
        add(id(node))
        downs.append(node)
        node = node.get("__down")
    ups.reverse()
    ups.append(ctx)
    return ups + downs, len(ups) - 1


def _raw_copies(raws: list[Raw], limits: Limits, memo: dict[int, Any]) -> dict[int, Any] | None:
    """{index: variables with their containers copied} of the raw frames whose variables
    hold a container that may still change (a list, dict, set or trace context, or a tuple
    holding one), or None if no frame does: the writer then reads every frame's variables
    from the raw records (capture's copy of a frame still running, or the dict of a finished
    frame, which nothing changes)."""
    watch = _CONTAINERS_OR_CONTEXTS
    found = _holding(raws, watch)
    if found is None:
        return None
    copies: dict[int, Any] = {}
    plain = _PLAIN
    for i in found:
        copy = copies[i] = {}
        raw = raws[i]
        for k, v in loc_items(raw[0], raw[2]):
            t = type(v)
            copy[k] = _freeze(v, 1, limits, memo) if type(t) is plain and t in watch else v
    return copies


def _frames_holding(raws: list[Raw], watch: frozenset[type]) -> list[int] | None:
    """The indices of the raw records whose variables hold a value of a class in ``watch``
    (see _holds_watched), or None if none does.  ``otrace._speedups.frames_holding`` when
    built: one call for the chain, classes compared by identity."""
    holds = _holds
    # (``is not None``, not a truth test: a class body's variables may be a program's dict
    # subclass, whose __len__ is program code; an empty one holds nothing anyway)
    found = [i for i, raw in enumerate(raws) if raw[2] is not None and holds(raw[2], watch)]
    return found or None


def _holds_watched(loc: Any, watch: frozenset[type]) -> bool:
    """Whether a frame's variables (in any form of lazy.Raw's) hold a value
    whose class is in ``watch`` -- a tuple only if it holds one.  Classes of a metaclass of
    their own are never looked up (hashing one would run the metaclass's ``__hash__``).
    ``otrace._speedups.holds_watched`` when built: about a tenth of the instructions.  One
    plain loop: on 3.11 it beats ``map``/``itertools`` pipelines (measured)."""
    plain = _PLAIN
    kind = type(loc)
    for v in map(_second, loc) if kind is list else loc if kind is tuple else dict.values(loc):
        t = plain(v)  # (``type``, from a local)
        if plain(t) is plain and t in watch:
            if t is not tuple:
                return True
            for x in v:  # (a tuple's few items: cheaper than isdisjoint(map(...)))
                t = plain(x)
                if plain(t) is plain and t in watch:
                    return True
    return False


_second = operator.itemgetter(1)
_holds = _c_holds_watched if _c_holds_watched is not None else _holds_watched
_holding = _c_frames_holding if _c_frames_holding is not None else _frames_holding


def freeze_context(ctx: TraceContext, pid: int, limits: Limits = DEFAULT_LIMITS) -> Snapshot:
    """Copy what may still change in ``ctx`` (cheap; runs on the creating thread).

    A chain still captured raw (otrace.contexts.lazy) is not built here: its raw records
    go to the writer, which makes the frames' ``__trc`` (and the root's ``framestack``).
    """
    memo: dict[int, Any] = {}
    pending = raw_records(ctx)
    if pending is not None:
        raws, context = pending
        copies = _raw_copies(raws, limits, memo)
        values, trc = _frame_values(ctx, limits, memo, True)
        _mark_report(trc)
        return Snapshot(
            ctx.id,
            ctx.kind,
            ctx.name,
            ctx.ctxid,
            ctx.timestamp,
            ctx.created,
            pid,
            (values, trc),
            len(raws),
            raws,
            context,
            copies,
        )
    flat: list[Any] = []
    chain, root = _chain(ctx)
    for i, f in enumerate(chain):
        flat.extend(_frame_values(f, limits, memo, i == root))
    _mark_report(flat[2 * root + 1])
    return Snapshot(
        ctx.id,
        ctx.kind,
        ctx.name,
        ctx.ctxid,
        ctx.timestamp,
        ctx.created,
        pid,
        tuple(flat),
        root,
    )


def _mark_report(trc: dict[str, Any]) -> None:
    if isinstance(trc.get("exc_context"), LazyText):
        # never rendered on the writer (see encode); the marker now keeps its inputs (the
        # exception, the root's values) out of the queue
        trc["exc_context"] = REPORT_MARK
