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
becomes an :class:`Unpicklable` placeholder.  Loading runs ``pickle``: only open files you trust.

Thread safety: every function may be called from any thread; none keeps shared state.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from typing import Any

from otrace.contexts.capture import LazyText
from otrace.contexts.record import FrameContext, TraceContext
from otrace.contexts.safe import safe_repr, safe_str

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


@dataclass(frozen=True)
class Unpicklable:
    """Stands for a value that could not be stored (or loaded): its type and a bounded repr."""

    type_name: str
    module: str
    repr_text: str
    reason: str = ""

    def __repr__(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"<unpicklable {self.module}.{self.type_name}{why}: {self.repr_text}>"

    __str__ = __repr__


@dataclass(frozen=True)
class Blob:
    """One value pickled on its own (loaded by :func:`decode`)."""

    data: bytes
    type_name: str
    module: str


class Unresolved:
    """Base of stand-ins for classes the reading process cannot import.

    A stand-in is called like the missing class (its arguments are kept in ``_args``) and
    takes the pickled state as attributes, so the object still browses like the original.
    """

    _missing = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args:
            self._args = args
        if kwargs:
            self._kwargs = kwargs

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict, slots) state
        if isinstance(state, dict):
            for key, value in state.items():
                try:
                    object.__setattr__(self, str(key), value)
                except Exception:
                    pass
        else:
            self._state = state

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}={safe_repr(v, 60)}" for k, v in list(vars(self).items())[:8])
        return f"<unresolved {self._missing}({attrs})>"


# A pure cache: one stand-in class per missing (module, name), the same for every runtime.
_STANDINS: dict[tuple[str, str], type] = {}


def _standin(module: str, name: str) -> type:
    key = (module, name)
    cls = _STANDINS.get(key)
    if cls is None:
        cls = type(name.replace(".", "_"), (Unresolved,), {"_missing": f"{module}.{name}"})
        cls.__module__ = "otrace.contexts.sanitize._unresolved"
        _STANDINS[key] = cls
    return cls


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except Exception:
            return _standin(module, name)


def loads(data: bytes) -> Any:
    """Unpickle, standing in for classes that cannot be imported here."""
    return _Unpickler(io.BytesIO(data)).load()


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
    values = {k: _freeze(v, 1, limits, memo) for k, v in list(frame.items()) if k not in _LINKS}
    trc = frame.get("__trc")
    trc = _freeze(dict(trc), 0, limits, memo) if isinstance(trc, dict) else {}
    return values, trc


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
        data, getattr(cls, "__qualname__", cls.__name__), str(getattr(cls, "__module__", ""))
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


def _restore(obj: Any, memo: dict[int, Any]) -> Any:
    cls = type(obj)
    if cls is Blob:
        done = memo.get(id(obj))
        if done is None:
            try:
                done = (loads(obj.data),)
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
                obj[k] = _restore(v, memo)
        return obj
    if cls is list:
        if id(obj) not in memo:
            memo[id(obj)] = obj
            obj[:] = [_restore(v, memo) for v in obj]
        return obj
    if cls is tuple:
        done = memo.get(id(obj))
        if done is None:
            done = tuple(_restore(v, memo) for v in obj)
            memo[id(obj)] = done
        return done
    return obj


def decode(data: bytes, *, key: str, kind: str, created: float) -> TraceContext:
    """Rebuild the context pickled by :func:`encode` (raises on a damaged record)."""
    record = loads(data)
    memo: dict[int, Any] = {}
    frames = [(_restore(v, memo), _restore(t, memo)) for v, t in record["frames"]]
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
