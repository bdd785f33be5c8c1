"""The trace context record and its trace id.

A trace id has three ``:``-separated fields, ``<Name>:<ctxid>:<timestamp>``, e.g.
``Cart.add_item:tr-name==apple:261121-04-40-56.00``.  ``<ctxid>`` is a two-letter kind code
and an optional ``-label``; ``<timestamp>`` is UTC ``YYMMDD-HH-MM-SS`` plus as many fraction
digits as are needed to sort after the previous timestamp this process issued -- so ids are
unique (the original could run out of digits and overwrite contexts).

A context is a ``dict`` of captured names (arguments, locals) plus ``__trc`` (bookkeeping),
and ``__up``/``__down`` links to the neighbouring frames, so that it browses as a directory.
The ``__down`` links close reference cycles; the store drops them (:meth:`TraceContext.unlink`)
when it lets a context go.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from otrace.contexts.speedups import trace_ids as _c_trace_ids

# long kind name -> two-letter code, in the order /osh/recent lists them
KINDS: dict[str, str] = {
    "traces": "tr",
    "exceptions": "ex",
    "asserts": "as",
    "breaks": "br",
    "holds": "hd",
    "tags": "tg",
    "dbaccess": "db",
    "stalls": "st",
}
CODES: dict[str, str] = {code: kind for kind, code in KINDS.items()}

# Process-wide on purpose (not per runtime): trace ids must stay unique across every
# runtime of the process and every file it writes.
_ts_lock = threading.Lock()
# the last id issued: its whole second's text and its fraction digits ("" for none)
_last_base = ""
_last_frac = ""
_base: tuple[float, str] = (-1.0, "")  # (whole second, its text): strftime is slow


def _py_new_timestamp(now: float | None = None) -> str:
    """Return a UTC timestamp that sorts after (so differs from) every earlier one.

    (:func:`new_timestamp` is this, or the same in C: ``otrace/_trace_ids.c``.)
    Thread-safe.  The next id is worked out outside the lock from the last one seen; under
    the lock it is only installed, if the last one is still that one (else worked out
    again).  So nothing under the lock calls, loops or allocates: no collection can start
    there (3.11 starts one at an allocation, 3.12+ at a call or a loop's jump back) and no
    signal handler can run there -- either could run a program's finalizer that records a
    context, and so asks for an id, on this very thread.
    """
    global _last_base, _last_frac, _base
    if now is None:
        now = time.time()
    second = int(now)  # (ids are for times after 1970: int() is floor, without fmod)
    cached = _base  # one tuple: read and replaced whole, so no lock is needed
    if cached[0] == second:
        base = cached[1]
    else:
        base = time.strftime("%y%m%d-%H-%M-%S", time.gmtime(now))
        _base = (second, base)
    micro = "%06d" % ((now - second) * 1_000_000)  # noqa: UP031 - twice as fast here
    while True:
        # (ids only grow, and these two are referenced here: if both globals are still
        # these very objects, no id was issued meanwhile)
        seen_base, seen_frac = _last_base, _last_frac
        if seen_base == base:
            if micro > seen_frac:
                # the fewest digits of this microsecond that sort after the previous
                # fraction: cut after the first digit that differs from its (or after all
                # of its, when it is a prefix of micro)
                k, size = 0, len(seen_frac)
                while k < size and micro[k] == seen_frac[k]:
                    k += 1
                last_base, frac = base, micro[: k + 1]
            else:  # same microsecond, or the clock went back: extend the previous one
                last_base, frac = base, seen_frac + "1"
        elif base > seen_base:  # a new second (or the first id): the base alone
            last_base, frac = base, ""
        else:  # the clock went back past a second: extend the previous id
            last_base, frac = seen_base, seen_frac + "1"
        with _ts_lock:  # (``with``: an interrupt cannot come between taking it and the try)
            if _last_base is seen_base and _last_frac is seen_frac:
                _last_base, _last_frac = last_base, frac
                break
    return last_base + "." + frac if frac else last_base


# the C version when built (one clock per process: whichever is chosen at import issues every
# id); either is thread-safe, takes no lock a finalizer could wait for, and runs no program code
new_timestamp: Callable[..., str] = (
    _c_trace_ids.new_timestamp if _c_trace_ids is not None else _py_new_timestamp
)


def timestamp_state() -> tuple[str, str]:
    """The last timestamp issued, as (whole second, fraction digits): for tests that issue
    ids of other times and put the clock back with :func:`set_timestamp_state`."""
    if _c_trace_ids is not None:
        return _c_trace_ids.state()
    return _last_base, _last_frac


def set_timestamp_state(state: tuple[str, str]) -> None:
    """Make ``state`` (from :func:`timestamp_state`) the last timestamp issued."""
    global _last_base, _last_frac
    if _c_trace_ids is not None:
        _c_trace_ids.set_state(*state)
    else:
        _last_base, _last_frac = state


def _clean(text: str, repl: str) -> str:
    done = (_NAMES if repl == ".." else _LABELS).get(text)
    return done if done is not None else _cleaned(text, repl)


def _cleaned(text: str, repl: str) -> str:
    """``text`` made fit for a trace id, and kept (the usual caller looks it up first)."""
    cache = _NAMES if repl == ".." else _LABELS
    if len(cache) > 10_000:
        cache.clear()
    done = cache[text] = text.replace(":", repl).replace("/", "|")
    return done


# names (":" as "..") and labels (":" as ";") of trace ids, as cleaned: a context per call
# of a traced function makes the same few over and over (bounded by clearing; dict
# operations are atomic)
_NAMES: dict[str, str] = {}
_LABELS: dict[str, str] = {}


def make_trace_id(name: str, kind: str, label: str = "", timestamp: str | None = None) -> str:
    """Build ``<Name>:<code>[-label]:<timestamp>`` for a context of ``kind``."""
    code = KINDS.get(kind, "un")
    ctxid = code + ("-" + _clean(label, ";") if label else "")
    return f"{_clean(name, '..')}:{ctxid}:{timestamp or new_timestamp()}"


def parse_trace_id(trace_id: str) -> tuple[str, str, str, str]:
    """Split a trace id into (kind, Name, ctxid, timestamp); ValueError if malformed."""
    parts = trace_id.split(":")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not a trace id: {trace_id!r}")
    name, ctxid, ts = parts
    kind = CODES.get(ctxid[:2])
    if kind is None:
        raise ValueError(f"unknown context kind in trace id: {trace_id!r}")
    return kind, name, ctxid, ts


_MAX_CHAIN = 100_000

# threading's own table of running threads (what current_thread() reads), looked up
# directly: a context per call asks; a thread it does not know falls back to the real thing
_active: dict[int, threading.Thread] = getattr(threading, "_active", {})
_get_ident = threading.get_ident


def _thread_name() -> str:
    thread = _active.get(_get_ident())
    return thread.name if thread is not None else threading.current_thread().name


class FrameContext(dict):
    """One frame's snapshot: its locals, ``__trc`` and ``__up``/``__down`` links.

    It is a ``dict`` so the shell browses it like any mapping; ``__trc`` is always present.
    """

    def __init__(self, values: dict[str, Any] | None = None, trc: dict[str, Any] | None = None):
        super().__init__(values or {})
        self["__trc"] = trc if trc is not None else {}

    @property
    def trc(self) -> dict[str, Any]:
        return self["__trc"]

    __hash__ = object.__hash__  # type: ignore[assignment]  # identity, so contexts can live in sets and weak maps

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:
        return "{" + ", ".join(str(k) for k in self) + "}"


class TraceContext(FrameContext):
    """The root of a trace context (the record ``/osh/recent`` keeps).

    Attributes kept outside the dict (not browsable names): ``id``, ``kind``, ``name``
    (``Class.method``), ``ctxid``, ``timestamp``, ``created`` (epoch seconds) and ``live``
    (an object with ``release(value)`` while a break or hold is pending, else None).
    """

    # (slots: a context per traced call sets these seven; other attributes still go to the
    # instance dict FrameContext has)
    __slots__ = ("id", "kind", "name", "ctxid", "timestamp", "created", "live")

    def __init__(
        self,
        kind: str,
        name: str,
        label: str = "",
        values: dict[str, Any] | None = None,
        trc: dict[str, Any] | None = None,
        trace_id: str | None = None,
        created: float | None = None,
    ):
        # (FrameContext.__init__, without two super() calls per context)
        dict.__init__(self, values or ())
        self["__trc"] = trc if trc is not None else {}
        up = dict.get(self, "__up")
        if isinstance(up, FrameContext):
            up["__down"] = self  # the caller's frame leads back down to this root
        self.created = created if created is not None else time.time()
        code = KINDS.get(kind, "")
        clean = (_NAMES.get(name) or _cleaned(name, "..")) if code and not trace_id else ""
        if clean:  # the usual case, without formatting an id only to parse it again
            self.name, self.kind, self.timestamp = clean, kind, new_timestamp(self.created)
            self.ctxid: str = (
                code + "-" + (_LABELS.get(label) or _cleaned(label, ";")) if label else code
            )
            self.id = f"{clean}:{self.ctxid}:{self.timestamp}"
        else:
            self.id = trace_id or make_trace_id(name, kind, label, new_timestamp(self.created))
            kind_, self.name, self.ctxid, self.timestamp = parse_trace_id(self.id)
            self.kind = kind if kind in KINDS else kind_
        self.live: Any = None
        info = self["__trc"]
        info.setdefault("id", self.id)
        info.setdefault("context", self.kind)
        info.setdefault("thread", _thread_name())
        info.setdefault("related", {})

    def unlink(self) -> None:
        """Drop the ``__down`` links of its frame chain, once the store no longer keeps it.

        ``__up`` (root to callers) and ``__down`` (back) make every context a reference
        cycle; without ``__down`` a dropped context is freed at once, with its captured
        locals, instead of waiting for the cycle collector (and showing up in the program's
        own ``gc.garbage`` checks).  Any thread.
        """
        node = dict.get(self, "__up")
        # a chain is a line outwards (capture builds it so); the bound only stops a chain
        # somebody made circular by hand.  dict's own get: a chain not built yet (see
        # otrace.contexts.lazy) holds only the root's link, and is not built for this.
        for _ in range(_MAX_CHAIN):
            if not isinstance(node, FrameContext):
                break
            dict.pop(node, "__down", None)
            node = dict.get(node, "__up")

    @property
    def path(self) -> tuple[str, str, str, str]:
        """Where it sits below ``/osh/recent`` or ``/osh/saved``."""
        return (self.kind, self.name, self.ctxid, self.timestamp)

    def __repr__(self) -> str:
        return f"<TraceContext {self.id}>"


# TraceContext(kind, name, label, values, trc) the usual way (a kind, name and label seen
# before, values and trc dicts), in C when built: ``otrace/_trace_ids.c``'s ``context``,
# about a fifth of the instructions.  It returns None for anything else, which the class
# then makes.  Any thread; runs no program code.
context_fast: Callable[[str, str, str, Any, Any], TraceContext | None] | None = None
# the classes a ``__trc`` given to it may be: dict, and otrace's own subclasses whose
# setdefault and item setting are dict's (otrace.contexts.lazy adds them)
TRC_TYPES: list[type] = [dict]
if _c_trace_ids is not None and hasattr(_c_trace_ids, "file"):  # (not a module built before)
    _c_trace_ids.setup(
        TraceContext,
        FrameContext,
        KINDS,
        _NAMES,
        _LABELS,
        _active,
        threading.Thread.__dict__["name"],
        _thread_name,
        TRC_TYPES,
    )
    context_fast = _c_trace_ids.context
# ContextStore._file's usual case in C (otrace.contexts.store), or None
file_fast: Callable[..., Any] | None = getattr(_c_trace_ids, "file", None)
