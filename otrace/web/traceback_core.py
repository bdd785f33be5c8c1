"""The traceback page's model: frames read from a context chain, page sessions, evaluation.

Nothing here touches a live frame or imports Tornado.  A page is built from a trace context
(a :class:`~otrace.contexts.TraceContext` held by the store, or the plain ``dict`` an
unpickled one becomes): the root and every ``__up`` link carry ``__trc`` with ``frame`` =
``(filename, lineno, funcname, source lines)`` and ``module``.  Live and post-mortem pages
therefore work the same way.

Opening a page makes a :class:`PageSession`: a copy of every frame's captured locals, so
code typed in a frame can assign names and see them again, without changing the context the
shell shows.  :class:`SessionTable` keeps a bounded number of sessions (oldest dropped).

Evaluation (:func:`evaluate`) runs typed code with the session's locals and the globals of
the frame's module (``sys.modules[module].__dict__`` when that module is loaded here --
except ``__main__`` of a post-mortem context, which is another program's -- else a fresh
namespace kept for the session).  Its standard output is captured for that evaluation only:
``sys.stdout`` is routed once, for good, through a proxy that writes to the evaluating
thread's buffer (a context variable) and passes every other write through unchanged.

Thread safety: :func:`evaluate` runs in worker threads; :class:`SessionTable` may be used
from any thread; the rest is pure data.  The work is split: frames and
exception groups in :mod:`otrace.web.tb_frames`, evaluation in :mod:`otrace.web.tb_eval`;
this module owns the context sources and page sessions and re-exports the other names.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from otrace.contexts.lazy import materialise
from otrace.contexts.record import parse_trace_id
from otrace.contexts.safe import safe_repr, safe_str
from otrace.web.tb_eval import (
    MAX_OUTPUT,
    MAX_VALUE,
    EvalResult,
    RoutedStream,
    compile_input,
    evaluate,
    route_stdout,
)
from otrace.web.tb_frames import (
    LINK_KEYS,
    MAX_FRAMES,
    RELATION_TEXT,
    FrameGroup,
    FrameView,
    chain_frames,
    context_id,
    describe,
    exception_groups,
    frame_globals,
    is_library_file,
)

__all__ = [
    "LINK_KEYS",
    "MAX_FRAMES",
    "MAX_OUTPUT",
    "MAX_VALUE",
    "RELATION_TEXT",
    "ContextSource",
    "EvalResult",
    "FrameGroup",
    "FrameView",
    "PageSession",
    "RoutedStream",
    "SessionTable",
    "chain_frames",
    "compile_input",
    "context_id",
    "describe",
    "evaluate",
    "exception_groups",
    "frame_globals",
    "is_library_file",
    "open_session",
    "route_stdout",
    "sort_ids",
]


# -- context sources -----------------------------------------------------------------------
@dataclass
class ContextSource:
    """Where the page finds contexts: ``get(trace_id)`` and ``list_ids()``.

    ``live`` says whether the contexts were captured in this process (then ``__main__`` is
    the program's own module); ``label`` names the source on the index page.
    ``get`` and ``list_ids`` are called on the event-loop thread.
    """

    get: Callable[[str], Mapping[str, Any] | None]
    list_ids: Callable[[], Iterable[str]]
    live: bool = True
    label: str = ""

    @classmethod
    def from_mapping(
        cls,
        contexts: Mapping[str, Mapping[str, Any]],
        *,
        live: bool = False,
        label: str = "contexts",
    ) -> ContextSource:
        """A source over a ``{trace id: context}`` mapping (read when asked, not copied)."""
        return cls(get=contexts.get, list_ids=lambda: list(contexts), live=live, label=label)

    @classmethod
    def from_tree(
        cls, tree: Mapping[str, Any], *, live: bool = False, label: str = "pickled"
    ) -> ContextSource:
        """A source over a ``kind -> Name -> ctxid -> timestamp -> {":": context}`` tree.

        This is the shape :func:`otrace.contexts.sqlite.open_pickled` returns; a context is
        only read (unpickled) when its page is opened.
        """

        def get(trace_id: str) -> Mapping[str, Any] | None:
            try:
                kind, name, ctxid, ts = parse_trace_id(trace_id)
                leaf = tree[kind][name][ctxid][ts]
            except (ValueError, KeyError, TypeError):
                return None
            if isinstance(leaf, Mapping) and "__trc" not in leaf:
                try:
                    leaf = leaf[":"]
                except KeyError:
                    return None
            return leaf if isinstance(leaf, Mapping) else None

        def list_ids() -> list[str]:
            ids: list[str] = []
            for names in tree.values():
                for name, ctxids in names.items():
                    for ctxid, stamps in ctxids.items():
                        ids.extend(f"{name}:{ctxid}:{ts}" for ts in stamps)
            return ids

        return cls(get=get, list_ids=list_ids, live=live, label=label)


def sort_ids(ids: Iterable[str]) -> list[str]:
    """Trace ids newest first (by their timestamp field), unparsable ones last."""

    def key(tid: str) -> str:
        try:
            return parse_trace_id(tid)[3]
        except ValueError:
            return ""

    return sorted(ids, key=key, reverse=True)


# -- sessions ------------------------------------------------------------------------------
@dataclass
class PageSession:
    """The frames of one opened page, with their own copies of the locals."""

    trace_id: str
    title: str
    detail: str
    frames: list[FrameView]
    live: bool
    meta: dict[str, str] = field(default_factory=dict)
    fields: list[tuple[str, str]] = field(default_factory=list)  # the root's __trc, shown
    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    created: float = field(default_factory=time.time)
    groups: list[FrameGroup] = field(default_factory=list)

    def frame_groups(self) -> list[FrameGroup]:
        """The groups to show (one holding every frame when none were made)."""
        return self.groups or [FrameGroup(self.title, 0, len(self.frames))]


class SessionTable:
    """At most ``limit`` page sessions; adding one more drops the least recently used.

    Thread-safe.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._lock = threading.Lock()
        self._items: OrderedDict[str, PageSession] = OrderedDict()

    def add(self, session: PageSession) -> list[PageSession]:
        """Keep ``session``; return the sessions dropped to make room."""
        dropped = []
        with self._lock:
            self._items[session.id] = session
            while len(self._items) > self.limit:
                dropped.append(self._items.popitem(last=False)[1])
        return dropped

    def get(self, session_id: str) -> PageSession | None:
        with self._lock:
            session = self._items.get(session_id)
            if session is not None:
                self._items.move_to_end(session_id)
            return session

    def __len__(self) -> int:
        return len(self._items)


def open_session(ctx: Mapping[str, Any], *, live: bool) -> PageSession:
    """Read a context chain into a new page session."""
    materialise(ctx)  # its frames and its __trc's framestack/where, if not built yet
    title, detail = describe(ctx)
    trc = ctx.get("__trc")
    trc = trc if isinstance(trc, Mapping) else {}
    meta = {}
    for key in ("request", "thread", "where"):
        if trc.get(key):
            meta[key] = safe_str(trc[key], 500)
    fields = [
        (safe_str(k, 100), safe_repr(v, 400))
        for k, v in sorted(trc.items(), key=lambda kv: str(kv[0]))
        if k not in ("frame", "exc_stack")  # shown as the frames and the plain traceback
    ][:100]
    frames, groups = exception_groups(ctx, live=live, title=title)
    return PageSession(
        trace_id=context_id(ctx),
        title=title,
        detail=detail,
        frames=frames,
        live=live,
        meta=meta,
        groups=groups if len(groups) > 1 else [],
        fields=fields,
    )
