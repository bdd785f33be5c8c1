"""Turning a live trace context into bytes that outlive the process, and back.

Writing happens in two steps, so that the traced program pays little:

1. :func:`freeze_context` runs on the thread that created the context.  It copies the frame
   chain (``__up``/``__down``), every ``__trc`` dict and the built-in containers among the
   values (``dict``, ``list``, ``tuple``, ``set``, ``frozenset``, down to ``max_depth`` and at
   most ``max_items`` elements each), so later changes to those containers do not leak into
   the record.  Other objects are kept by reference.
2. :func:`encode` runs on the pickle writer's thread.  It pickles every value that is not a
   plain scalar or rebuilt container *on its own*, so one bad value never costs the record:
   a value that does not pickle (locks, sockets, generators, open files, a ``__reduce__`` that
   raises, nesting too deep for the pickler) or whose pickle is bigger than
   ``max_value_bytes`` becomes an :class:`Unpicklable` placeholder keeping its type name and a
   bounded ``repr``.  Objects kept by reference are pickled in the state they have *then*
   (a moment after the context was created).

:func:`decode` rebuilds a :class:`~otrace.contexts.record.TraceContext` with its
:class:`~otrace.contexts.record.FrameContext` chain.  A class that cannot be imported in the
reading process (say, defined in the writer's ``__main__``) is replaced by a stand-in subclass
of :class:`Unresolved` that keeps the object's attributes; a value that still fails to load
becomes an :class:`Unpicklable` placeholder.  Loading is restricted unless the file is
trusted (see :mod:`otrace.contexts.unpickle`): no code named by the file runs.

Thread safety: every function may be called from any thread; none keeps shared state.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

from otrace.contexts.capture import LazyText
from otrace.contexts.record import FrameContext, TraceContext
from otrace.contexts.safe import escape_controls, safe_repr, safe_str
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


@dataclass
class Snapshot:
    """A context frozen at creation: metadata plus the frame chain, outermost first."""

    key: str
    kind: str
    name: str
    ctxid: str
    timestamp: str
    created: float
    pid: int
    frames: list[tuple[dict[Any, Any], dict[Any, Any]]]
    root: int


def _freeze(obj: Any, depth: int, limits: Limits, memo: dict[int, Any]) -> Any:
    cls = type(obj)
    if cls in (dict, list, tuple, set, frozenset):
        done = memo.get(id(obj))
        if done is not None:
            return done
        if depth >= limits.max_depth or len(obj) > limits.max_items:
            return obj
        if cls is dict:
            out: Any = {}
            memo[id(obj)] = out
            for k, v in list(obj.items()):
                out[k] = _freeze(v, depth + 1, limits, memo)
            return out
        if cls is list:
            out = []
            memo[id(obj)] = out
            out.extend(_freeze(v, depth + 1, limits, memo) for v in list(obj))
            return out
        if cls is tuple:
            out = tuple(_freeze(v, depth + 1, limits, memo) for v in obj)
        else:
            out = cls(obj)  # elements of sets are hashable, usually immutable
        memo[id(obj)] = out
        return out
    if isinstance(obj, FrameContext):
        return Unpicklable(
            cls.__name__, cls.__module__, safe_repr(obj, limits.repr_limit), "another trace context"
        )
    return obj


def _frame_values(frame: FrameContext, limits: Limits, memo: dict[int, Any]) -> tuple[dict, dict]:
    values = {
        k: _freeze_cause(v, limits, memo) if k in _CAUSES else _freeze(v, 1, limits, memo)
        for k, v in list(frame.items())
        if k not in _LINKS
    }
    trc = frame.get("__trc")
    trc = _freeze(dict(trc), 0, limits, memo) if isinstance(trc, dict) else {}
    return values, trc


# A chained exception (``__cause__``/``__context__``, see otrace.contexts.chain) is a frame
# chain of its own: stored as plain data under a marker key, rebuilt by decode.
_CAUSES = ("__cause__", "__context__")
_CHAIN_MARK = "__otrace_frames__"


def _freeze_cause(node: Any, limits: Limits, memo: dict[int, Any]) -> Any:
    if not isinstance(node, FrameContext):
        return _freeze(node, 1, limits, memo)
    chain: list[FrameContext] = []
    while isinstance(node, FrameContext) and node not in chain:
        chain.append(node)
        node = node.get("__up")
    return {_CHAIN_MARK: [_frame_values(f, limits, memo) for f in reversed(chain)]}


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
    node = ctx.get("__up")
    while isinstance(node, FrameContext) and id(node) not in seen:
        seen.add(id(node))
        ups.append(node)
        node = node.get("__up")
    downs: list[FrameContext] = []
    node = ctx.get("__down")
    while isinstance(node, FrameContext) and id(node) not in seen:
        seen.add(id(node))
        downs.append(node)
        node = node.get("__down")
    return ups[::-1] + [ctx] + downs, len(ups)


def freeze_context(ctx: TraceContext, pid: int, limits: Limits = DEFAULT_LIMITS) -> Snapshot:
    """Copy what may still change in ``ctx`` (cheap; runs on the creating thread)."""
    frames, root = _chain(ctx)
    memo: dict[int, Any] = {}
    return Snapshot(
        key=ctx.id,
        kind=ctx.kind,
        name=ctx.name,
        ctxid=ctx.ctxid,
        timestamp=ctx.timestamp,
        created=ctx.created,
        pid=pid,
        frames=[_frame_values(f, limits, memo) for f in frames],
        root=root,
    )


# -- step 2: on the writer thread ------------------------------------------------------------


def _placeholder(obj: Any, limits: Limits, reason: str) -> Unpicklable:
    cls = type(obj)
    return Unpicklable(
        getattr(cls, "__qualname__", cls.__name__),
        str(getattr(cls, "__module__", "")),
        safe_repr(obj, limits.repr_limit),
        reason,
    )


def _leaf(obj: Any, limits: Limits) -> Any:
    try:
        data = pickle.dumps(obj, PROTOCOL)
    except (
        BaseException
    ) as exc:  # RecursionError, PicklingError, TypeError, anything __reduce__ raises
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return _placeholder(obj, limits, safe_str(f"{type(exc).__name__}: {exc}", 160))
    if len(data) > limits.max_value_bytes:
        return _placeholder(obj, limits, f"too large: {len(data)} bytes pickled")
    cls = type(obj)
    return Blob(
        data,
        getattr(cls, "__qualname__", cls.__name__),
        str(getattr(cls, "__module__", "")),
        safe_repr(obj, limits.repr_limit),
    )


def _key(key: Any) -> Any:
    if isinstance(key, _KEY_TYPES):
        return key
    if type(key) is tuple and all(isinstance(k, _KEY_TYPES) for k in key):
        return key
    return safe_repr(key, 200)


def _sanitize(obj: Any, depth: int, limits: Limits, memo: dict[int, Any]) -> Any:
    cls = type(obj)
    if cls in _SCALARS:
        return obj
    if cls is str or cls is bytes:
        if len(obj) > limits.max_value_bytes:
            return _placeholder(obj, limits, f"too large: {len(obj)} characters")
        return obj
    if isinstance(obj, LazyText):
        return _sanitize(str(obj), depth, limits, memo)
    if isinstance(obj, Unpicklable):
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


def encode(snap: Snapshot, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Pickle a frozen context as plain data (runs on the writer thread; never raises for values)."""
    memo: dict[int, Any] = {}
    frames = [
        (_sanitize(v, 0, limits, memo), _sanitize(t, 0, limits, memo)) for v, t in snap.frames
    ]
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
    return root
