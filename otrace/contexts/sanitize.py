"""Turning a live trace context into bytes that outlive the process, and back.

Writing happens in two steps, so that the traced program pays little:

1. :func:`~otrace.contexts.freeze.freeze_context` (:mod:`otrace.contexts.freeze`) runs on
   the thread that created the context and copies only what can still change.
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

import pickle
from typing import Any

from otrace.contexts.freeze import (
    CAUSES,
    CHAIN_MARK,
    DEFAULT_LIMITS,
    LINKS,
    REPORT_MARK,
    Limits,
    Snapshot,
    freeze_context,
)
from otrace.contexts.lazy import raw_trc
from otrace.contexts.lazytext import LazyText
from otrace.contexts.record import FrameContext, TraceContext
from otrace.contexts.report import report_of_record
from otrace.contexts.safe import (
    escape_controls,
    exc_line,
    plain_key,
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
# (a set of exact types: _sanitize looks a class up only once it knows its metaclass is type,
# so hashing it runs nothing of the program's; a tuple would compare it with each in turn)
_SCALAR_SET = frozenset(_SCALARS)


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
    except BaseException as exc:  # noqa: B036
        # RecursionError, PicklingError, TypeError, anything __reduce__ or the class's
        # metaclass raises (pickle looks the class up by hash), SystemExit included: on the
        # writer thread it would end the thread, and nothing would be written again
        return _placeholder(obj, limits, exc_line(exc, 160))
    if len(data) > limits.max_value_bytes:
        return _placeholder(obj, limits, f"too large: {len(data)} bytes pickled")
    name, module = _type_names(obj)
    return Blob(data, name, module, stored_text(obj, limits.repr_limit))


def _sanitize(obj: Any, depth: int, limits: Limits, memo: dict[int, Any]) -> Any:
    cls = type(obj)
    if type(cls) is not type:
        # a metaclass of its own: none of the types below, and comparing it with them
        # would run the metaclass's __eq__
        return _leaf_once(obj, limits, memo)
    if cls in _SCALAR_SET:
        return obj
    if cls is str or cls is bytes:
        if len(obj) > limits.max_value_bytes:
            return _placeholder(obj, limits, f"too large: {len(obj)} characters")
        return obj
    done = memo.get(id(obj))
    if done is not None:
        return done
    # Containers copied by freeze are private now; rebuild them, values sanitised.
    small = (
        depth < limits.max_depth and len(obj) <= limits.max_items
        if cls is dict or cls is list or cls is tuple
        else False
    )
    if cls is dict and small:
        out: Any = {}
        memo[id(obj)] = out
        for k, v in obj.items():
            # (the usual keys and values -- names, numbers, short strings -- without a call)
            if type(k) is not str:
                k = plain_key(k)
            t = type(v)
            if t is str:
                if len(v) <= limits.max_value_bytes:
                    out[k] = v
                    continue
            elif t is int or t is bool or t is float or v is None:
                out[k] = v
                continue
            out[k] = _sanitize(v, depth + 1, limits, memo)
        return out
    if cls is list and small:
        out = []
        memo[id(obj)] = out
        out.extend(_items(obj, depth + 1, limits, memo))
        return out
    if cls is tuple and small:
        out = tuple(_items(obj, depth + 1, limits, memo))
        memo[id(obj)] = out
        return out
    if issubclass(cls, LazyText):
        return _sanitize(obj.safe_text(), depth, limits, memo)
    if issubclass(cls, Unpicklable):
        return obj
    return _leaf_once(obj, limits, memo)


def _items(seq: Any, depth: int, limits: Limits, memo: dict[int, Any]) -> list[Any]:
    """:func:`_sanitize` of each item (numbers and short strings taken as they are)."""
    out: list[Any] = []
    append = out.append
    for v in seq:
        t = type(v)
        if t is int or t is bool or t is float or v is None:
            append(v)
        elif t is str and len(v) <= limits.max_value_bytes:
            append(v)
        else:
            append(_sanitize(v, depth, limits, memo))
    return out


def _leaf_once(obj: Any, limits: Limits, memo: dict[int, Any]) -> Any:
    done = memo.get(id(obj))
    if done is None:
        done = memo[id(obj)] = _leaf(obj, limits)
    return done


# ``__trc`` entries that hold only text, numbers and tuples/lists of them when capturing made
# them: stored as they are (the pickler copes with them at C speed)
_PLAIN_MADE = frozenset(("frame", "framestack", "where", "argvalues", "exc_chain"))


def _sanitize_trc(trc: dict[Any, Any], limits: Limits, memo: dict[int, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for k, v in dict.items(trc):
        if type(k) is not str:  # (before anything hashes or compares it)
            k = plain_key(k)
        t = type(v)
        if k in _PLAIN_MADE:
            out[k] = v
        elif (
            t is int
            or t is bool
            or t is float
            or v is None
            or (t is str and len(v) <= limits.max_value_bytes)
        ):  # (taken as they are, as _items takes them)
            out[k] = v
        elif k == "exc_context" and isinstance(v, LazyText):
            out[k] = REPORT_MARK
        else:
            out[k] = _sanitize(v, 1, limits, memo)
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
            values = {k: v for k, v in list(values.items()) if k not in LINKS}
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


def _thaw_causes(values: dict[Any, Any]) -> None:
    """Turn stored cause chains in ``values`` back into frame chains (rooted innermost)."""
    for key in CAUSES:
        stored = values.get(key)
        if not (isinstance(stored, dict) and isinstance(stored.get(CHAIN_MARK), list)):
            continue
        outer: FrameContext | None = None
        for frame_values, trc in stored[CHAIN_MARK]:
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
    if trc.get("exc_context") == REPORT_MARK:
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
