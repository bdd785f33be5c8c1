"""Turning a live trace context into bytes that outlive the process, and back.

Writing happens in two steps, so that the traced program pays little:

1. :func:`freeze_context` runs on the thread that created the context and copies only what
   can still change: the root frame's dict and ``__trc`` (otrace adds a return value or a
   release reason later), the built-in containers among the program's values (``dict``,
   ``list``, ``tuple``, ``set``, down to ``max_depth`` and at most ``max_items`` elements
   each, so later changes to them do not leak into the record) and the dicts of frames
   holding such containers.  Every other frame is handed over by reference (capture made
   it, nothing changes it), as are what capturing made and never changes again (the frame
   lines, ``framestack``, the lazy texts) and other objects.  It runs no program code:
   type checks look at ``type()`` only, and a dict keyed by program objects is copied
   without hashing them again.
2. :func:`encode` runs on the pickle writer's thread.  It pickles every value that is not a
   plain scalar or rebuilt container *on its own*, so one bad value never costs the record:
   a value that does not pickle (locks, sockets, generators, open files, a ``__reduce__`` that
   raises, nesting too deep for the pickler) or whose pickle is bigger than
   ``max_value_bytes`` becomes an :class:`Unpicklable` placeholder keeping its type name and a
   bounded text.  Objects kept by reference are pickled in the state they have *then*
   (a moment after the context was created).

The writer thread runs no ``__repr__``/``__str__`` of the program's: the text kept beside a
stored value is :func:`~otrace.contexts.safe.brief` (built-in values in full, other objects
as ``<module.Class object at 0x...>``), the traceback text is rendered with each
exception's safe line (:func:`~otrace.contexts.safe.exc_line`), and ``exc_context`` (which
shows every variable's ``repr``) is not rendered there at all: the record marks it and
:func:`decode` makes it again from the stored frames when an operator reads it.  Pickling
itself is the one program code the writer may run: a class's own ``__reduce__`` /
``__getstate__`` (what pickling an object means; failures become placeholders).

:func:`decode` rebuilds a :class:`~otrace.contexts.record.TraceContext` with its
:class:`~otrace.contexts.record.FrameContext` chain.  A class that cannot be imported in the
reading process (say, defined in the writer's ``__main__``) is replaced by a stand-in subclass
of :class:`Unresolved` that keeps the object's attributes; a value that still fails to load
becomes an :class:`Unpicklable` placeholder.  Loading is restricted unless the file is
trusted (see :mod:`otrace.contexts.unpickle`): no code named by the file runs.

Thread safety: every function may be called from any thread; none keeps shared state.
"""

from __future__ import annotations

import operator
import pickle
from dataclasses import dataclass
from typing import Any

from otrace.contexts.capture import LazyText
from otrace.contexts.lazy import Raw, materialise, raw_records, raw_trc
from otrace.contexts.record import FrameContext, TraceContext
from otrace.contexts.report import report_of_record
from otrace.contexts.safe import (
    brief,
    escape_controls,
    exc_line,
    safe_repr,
    safe_str,
    stored_text,
)
from otrace.contexts.unpickle import (
    Blob,
    PlaceholderError,
    Restricted,
    Unpicklable,
    Unresolved,
    loads,
    note_repr,
)

__all__ = [
    "DEFAULT_LIMITS",
    "Blob",
    "Limits",
    "PlaceholderError",
    "Restricted",
    "Snapshot",
    "Unpicklable",
    "Unresolved",
    "decode",
    "encode",
    "freeze_context",
    "loads",
]

PROTOCOL = 5
_SCALARS = (int, float, bool, type(None), complex)
_KEY_TYPES = (str, int, float, bool, type(None), bytes)
_LINKS = ("__up", "__down", "__trc")


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
    collection of the program to scan (hence slots, and no tuple per frame).
    """

    key: str
    kind: str
    name: str
    ctxid: str
    timestamp: str
    created: float
    pid: int
    frames: tuple[Any, ...]  # a raw frame's trc is (raw record, context lines)
    root: int

    def pairs(self) -> list[tuple[Any, Any]]:
        """(values, trc) of each frame, outermost first."""
        frames = self.frames
        return list(zip(frames[::2], frames[1::2], strict=True))


# Key types whose hash is the interpreter's own (a dict keyed by them is copied deeply)
_KEYS = frozenset((str, int, float, bool, type(None), bytes, complex))
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


def _freeze(obj: Any, depth: int, limits: Limits, memo: dict[int, Any]) -> Any:
    cls = type(obj)
    if cls not in _CONTAINERS:
        if issubclass(cls, FrameContext):
            return Unpicklable(
                cls.__name__,
                cls.__module__,
                safe_repr(obj, limits.repr_limit),
                "another trace context",
            )
        return obj  # a frozenset, a scalar, or an object kept by reference
    done = memo.get(id(obj))
    if done is not None:
        return done
    if depth >= limits.max_depth or len(obj) > limits.max_items:
        return obj
    depth += 1
    immutable = _IMMUTABLE
    if cls is dict:
        items = list(obj.items())
        if not _KEYS.issuperset(map(type, obj)):
            # storing under a program object's key would run its __hash__ (and __eq__):
            # a shallow copy (the interpreter reuses the stored hashes) is as far as it goes
            shallow = obj.copy()
            memo[id(obj)] = shallow
            return shallow
        out: Any = {}
        memo[id(obj)] = out
        for k, v in items:
            out[k] = v if type(v) in immutable else _freeze(v, depth, limits, memo)
        return out
    if cls is list:
        out = []
        memo[id(obj)] = out
        out.extend([v if type(v) in immutable else _freeze(v, depth, limits, memo) for v in obj])
        return out
    if cls is tuple:
        items = [v if type(v) in immutable else _freeze(v, depth, limits, memo) for v in obj]
        # a tuple of what did not need copying is itself safe to keep
        out = obj if all(map(operator.is_, items, obj)) else tuple(items)
    else:
        out = set(obj)  # elements of sets are hashable, usually immutable
    memo[id(obj)] = out
    return out


_CONTEXTS = frozenset((FrameContext, TraceContext))


def _unchanging(frame: dict[Any, Any]) -> bool:
    """True if nothing among ``frame``'s values can change or needs a placeholder: no
    built-in container (a tuple only of such values is fine), no trace context, no cause."""
    containers = _CONTAINERS
    for k, v in dict.items(frame):
        t = type(v)
        if t in containers:
            if k == "__trc":
                continue
            if t is not tuple or not _CONTAINERS_OR_CONTEXTS.isdisjoint(map(type, v)):
                return False
        elif t in _CONTEXTS and k not in _LINKS:
            return False
    return True


_CONTAINERS_OR_CONTEXTS = _CONTAINERS | _CONTEXTS


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
        containers = _CONTAINERS
        made = _MADE
        # dict's own items: a root's framestack/where still to be made stay placeholders
        # (encode makes them, on the writer thread; see otrace.contexts.lazy)
        trc = {
            k: v if k in made or type(v) not in containers else _freeze(v, 1, limits, memo)
            for k, v in list(dict.items(trc))
        }
    if not root and _unchanging(frame):
        return frame, trc
    containers = _CONTAINERS
    values = {}
    for k, v in list(frame.items()):
        if type(v) in containers:
            if k != "__trc":
                values[k] = _freeze(v, 1, limits, memo)
        elif k in _LINKS:
            continue
        elif k in _CAUSES:
            values[k] = _freeze_cause(v, limits, memo)
        elif issubclass(type(v), FrameContext):
            values[k] = _freeze(v, 1, limits, memo)
        else:
            values[k] = v
    return values, trc


# A chained exception (``__cause__``/``__context__``, see otrace.contexts.chain) is a frame
# chain of its own: stored as plain data under a marker key, rebuilt by decode.
_CAUSES = ("__cause__", "__context__")
_CHAIN_MARK = "__otrace_frames__"


def _freeze_cause(node: Any, limits: Limits, memo: dict[int, Any]) -> Any:
    if not issubclass(type(node), FrameContext):
        return _freeze(node, 1, limits, memo)
    chain: list[FrameContext] = []
    materialise(node)
    while isinstance(node, FrameContext) and node not in chain:
        chain.append(node)
        node = node.get("__up")
    # copied whole (rare; and the writer reads a cause's frames only as plain data)
    return {_CHAIN_MARK: [_frame_values(f, limits, memo, True) for f in reversed(chain)]}


def _thaw_causes(values: dict[Any, Any]) -> None:
    """Turn stored cause chains in ``values`` back into frame chains (rooted innermost)."""
    for key in _CAUSES:
        stored = values.get(key)
        if not (isinstance(stored, dict) and isinstance(stored.get(_CHAIN_MARK), list)):
            continue
        outer: FrameContext | None = None
        for frame_values, trc in stored[_CHAIN_MARK]:
            if not isinstance(frame_values, dict):
                continue
            frame_values = _names(frame_values)
            _thaw_causes(frame_values)
            node = FrameContext(frame_values, _names(trc) if isinstance(trc, dict) else {})
            if outer is not None:
                node["__up"] = outer
                outer["__down"] = node
            outer = node
        values[key] = outer


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


def _raw_values(raw: Raw, context: int, limits: Limits, memo: dict[int, Any]) -> tuple:
    """(values, (raw, context)) of a frame captured raw: its variables by reference when
    nothing in them can change, else with their containers copied; its ``__trc`` is made
    by :func:`encode` (on the writer thread)."""
    loc = raw[2]
    if not loc:
        values: dict[Any, Any] = {}
    elif _unchanging(loc):
        values = loc  # capture's own copy, or the dict of a finished frame
    else:
        containers = _CONTAINERS
        values = {}
        for k, v in list(dict.items(loc)):
            t = type(v)
            values[k] = _freeze(v, 1, limits, memo) if t in containers or t in _CONTEXTS else v
    return values, (raw, context)


def freeze_context(ctx: TraceContext, pid: int, limits: Limits = DEFAULT_LIMITS) -> Snapshot:
    """Copy what may still change in ``ctx`` (cheap; runs on the creating thread).

    A chain still captured raw (otrace.contexts.lazy) is not built here: its raw records
    go to the writer, which makes the frames' ``__trc`` (and the root's ``framestack``).
    """
    memo: dict[int, Any] = {}
    flat: list[Any] = []
    pending = raw_records(ctx)
    if pending is not None:
        raws, context = pending
        for raw in raws:
            flat.extend(_raw_values(raw, context, limits, memo))
        flat.extend(_frame_values(ctx, limits, memo, True))
        root = len(raws)
    else:
        chain, root = _chain(ctx)
        for i, f in enumerate(chain):
            flat.extend(_frame_values(f, limits, memo, i == root))
    trc = flat[2 * root + 1]
    if isinstance(trc.get("exc_context"), LazyText):
        # never rendered on the writer (see encode); the marker now keeps its inputs (the
        # exception, the root's values) out of the queue
        trc["exc_context"] = _REPORT_MARK
    return Snapshot(
        key=ctx.id,
        kind=ctx.kind,
        name=ctx.name,
        ctxid=ctx.ctxid,
        timestamp=ctx.timestamp,
        created=ctx.created,
        pid=pid,
        frames=tuple(flat),
        root=root,
    )


# -- step 2: on the writer thread ------------------------------------------------------------


_QUALNAME: Any = type.__dict__["__qualname__"]
_MODULE: Any = type.__dict__["__module__"]


def _type_names(obj: Any) -> tuple[str, str]:
    """(qualified name, module) of ``obj``'s class, read without the program's code."""
    cls = type(obj)
    try:
        return str(_QUALNAME.__get__(cls)), str(_MODULE.__get__(cls) or "")
    except Exception:
        return "object", ""


def _placeholder(obj: Any, limits: Limits, reason: str) -> Unpicklable:
    name, module = _type_names(obj)
    return Unpicklable(name, module, stored_text(obj, limits.repr_limit), reason)


def _leaf(obj: Any, limits: Limits) -> Any:
    try:
        data = pickle.dumps(obj, PROTOCOL)
    except (
        BaseException
    ) as exc:  # RecursionError, PicklingError, TypeError, anything __reduce__ raises
        if issubclass(type(exc), (KeyboardInterrupt, SystemExit)):
            raise
        return _placeholder(obj, limits, exc_line(exc, 160))
    if len(data) > limits.max_value_bytes:
        return _placeholder(obj, limits, f"too large: {len(data)} bytes pickled")
    name, module = _type_names(obj)
    return Blob(data, name, module, stored_text(obj, limits.repr_limit))


def _key(key: Any) -> Any:
    if issubclass(type(key), _KEY_TYPES):
        return key
    if type(key) is tuple and all(issubclass(type(k), _KEY_TYPES) for k in key):
        return key
    return brief(key, 200)


def _sanitize(obj: Any, depth: int, limits: Limits, memo: dict[int, Any]) -> Any:
    cls = type(obj)
    if cls in _SCALARS:
        return obj
    if cls is str or cls is bytes:
        if len(obj) > limits.max_value_bytes:
            return _placeholder(obj, limits, f"too large: {len(obj)} characters")
        return obj
    if issubclass(cls, LazyText):
        return _sanitize(obj.safe_text(), depth, limits, memo)
    if issubclass(cls, Unpicklable):
        return obj
    done = memo.get(id(obj))
    if done is not None:
        return done
    # Containers copied by freeze are private now; rebuild them, values sanitised.
    small = (
        depth < limits.max_depth and len(obj) <= limits.max_items
        if cls in (dict, list, tuple)
        else False
    )
    if cls is dict and small:
        out: Any = {}
        memo[id(obj)] = out
        for k, v in obj.items():
            out[_key(k)] = _sanitize(v, depth + 1, limits, memo)
        return out
    if cls is list and small:
        out = []
        memo[id(obj)] = out
        out.extend(_sanitize(v, depth + 1, limits, memo) for v in obj)
        return out
    if cls is tuple and small:
        out = tuple(_sanitize(v, depth + 1, limits, memo) for v in obj)
        memo[id(obj)] = out
        return out
    out = _leaf(obj, limits)
    memo[id(obj)] = out
    return out


# ``__trc`` entries that hold only text, numbers and tuples/lists of them when capturing made
# them: stored as they are (the pickler copes with them at C speed)
_PLAIN_MADE = frozenset(("frame", "framestack", "where", "argvalues", "exc_chain"))
# ``exc_context`` is stored as this marker: decode renders it from the stored frames
_REPORT_MARK = "<otrace: exc_context, rendered when read>"


def _sanitize_trc(trc: dict[Any, Any], limits: Limits, memo: dict[int, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for k, v in dict.items(trc):
        if k in _PLAIN_MADE:
            out[k] = v
        elif k == "exc_context" and isinstance(v, LazyText):
            out[k] = _REPORT_MARK
        else:
            out[_key(k)] = _sanitize(v, 1, limits, memo)
    return out


def encode(snap: Snapshot, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Pickle a frozen context as plain data (runs on the writer thread; never raises for values)."""
    memo: dict[int, Any] = {}
    frames = []
    made = []  # alive until the end: the memo is keyed by id
    pairs = snap.pairs()
    trcs = [raw_trc(*trc) if type(trc) is tuple else trc for _, trc in pairs]
    root_trc = trcs[snap.root] if 0 <= snap.root < len(trcs) else None
    if root_trc is not None and dict.get(root_trc, "framestack", 0) is None:
        # captured raw, frozen before anybody read it: made from the frames above
        lines = [t.get("frame") if isinstance(t, dict) else None for t in trcs[: snap.root + 1]]
        root_trc = dict(dict.items(root_trc))
        root_trc["framestack"] = lines
        root_trc["where"] = "-->".join([f[2] if type(f) is tuple else "?" for f in lines])
        trcs[snap.root] = root_trc
    for (values, _), trc in zip(pairs, trcs, strict=True):
        if type(values) is not dict:  # a frame kept by reference: its values, not its links
            values = {k: v for k, v in list(values.items()) if k not in _LINKS}
            made.append(values)
        frames.append((_sanitize(values, 0, limits, memo), _sanitize_trc(trc, limits, memo)))
    return pickle.dumps({"frames": frames, "root": snap.root}, PROTOCOL)


# -- reading ---------------------------------------------------------------------------------


def _restore(obj: Any, memo: dict[int, Any], trust: bool) -> Any:
    cls = type(obj)
    if cls is Blob:
        done = memo.get(id(obj))
        if done is None:
            try:
                done = (loads(obj.data, trust=trust),)
                note_repr(done[0], getattr(obj, "repr_text", ""))
            except Exception as exc:
                done = (
                    Unpicklable(
                        obj.type_name,
                        obj.module,
                        "<not loaded>",
                        safe_str(f"cannot load: {type(exc).__name__}: {exc}", 160),
                    ),
                )
            memo[id(obj)] = done
        return done[0]
    if cls is dict:
        done = memo.get(id(obj))
        if done is None:
            memo[id(obj)] = obj
            for k, v in list(obj.items()):
                obj[k] = _restore(v, memo, trust)
        return obj
    if cls is list:
        if id(obj) not in memo:
            memo[id(obj)] = obj
            obj[:] = [_restore(v, memo, trust) for v in obj]
        return obj
    if cls is tuple:
        done = memo.get(id(obj))
        if done is None:
            done = tuple(_restore(v, memo, trust) for v in obj)
            memo[id(obj)] = done
        return done
    return obj


def _names(values: Any) -> dict[Any, Any]:
    """A frame's values with names a crafted file could use on a terminal escaped."""
    if not isinstance(values, dict):
        return {"__value": values}
    return {
        escape_controls(k) if isinstance(k, str) and not k.isprintable() else k: v
        for k, v in values.items()
    }


def decode(
    data: bytes, *, key: str, kind: str, created: float, trust: bool = False
) -> TraceContext:
    """Rebuild the context pickled by :func:`encode` (raises on a damaged record).

    Loading is restricted (no code from the file runs, see :mod:`otrace.contexts.unpickle`)
    unless ``trust``.
    """
    record = loads(data, trust=trust)
    memo: dict[int, Any] = {}
    frames = [
        (_names(_restore(v, memo, trust)), _names(_restore(t, memo, trust)))
        for v, t in record["frames"]
    ]
    for values, _ in frames:
        _thaw_causes(values)
    root_index = record["root"]
    nodes: list[FrameContext] = []
    for i, (values, trc) in enumerate(frames):
        if i == root_index:
            nodes.append(
                TraceContext(kind, "", values=values, trc=trc, trace_id=key, created=created)
            )
        else:
            nodes.append(FrameContext(values, trc))
    for outer, inner in zip(nodes, nodes[1:], strict=False):
        inner["__up"] = outer
        outer["__down"] = inner
    root = nodes[root_index]
    assert isinstance(root, TraceContext)
    trc = root["__trc"]
    if trc.get("exc_context") == _REPORT_MARK:
        # made now, from the stored frames, in the reading process (a text, as it was)
        header = trc.get("exception")
        trc["exc_context"] = str(
            LazyText(
                report_of_record,
                header if isinstance(header, str) else "exception",
                root,
                trc.get("frame"),
            )
        )
    return root
