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
from any thread; the rest is pure data.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import io
import os
import secrets
import sys
import sysconfig
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from otrace.contexts.capture import module_globals
from otrace.contexts.record import parse_trace_id
from otrace.contexts.safe import safe_repr, safe_str
from otrace.holds import AwaitError, run_coroutine
from otrace.shell.evaluate import run_async

LINK_KEYS = frozenset({"__trc", "__up", "__down"})
MAX_FRAMES = 2000
MAX_OUTPUT = 200_000
MAX_VALUE = 50_000


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


def context_id(ctx: Mapping[str, Any]) -> str:
    """The trace id of a context (attribute of a live one, ``__trc["id"]`` of a stored one)."""
    cid = getattr(ctx, "id", None)
    if isinstance(cid, str):
        return cid
    trc = ctx.get("__trc")
    if isinstance(trc, Mapping) and isinstance(trc.get("id"), str):
        return trc["id"]
    return ""


def sort_ids(ids: Iterable[str]) -> list[str]:
    """Trace ids newest first (by their timestamp field), unparsable ones last."""

    def key(tid: str) -> str:
        try:
            return parse_trace_id(tid)[3]
        except ValueError:
            return ""

    return sorted(ids, key=key, reverse=True)


# -- frames --------------------------------------------------------------------------------
_LIB_DIRS = tuple(
    os.path.normcase(p) + os.sep
    for p in {
        sysconfig.get_paths().get("stdlib", ""),
        sysconfig.get_paths().get("purelib", ""),
        sysconfig.get_paths().get("platlib", ""),
    }
    if p
)


def is_library_file(filename: str) -> bool:
    """True for the standard library, installed packages and frozen modules."""
    if filename.startswith("<"):
        return True
    norm = os.path.normcase(filename)
    if norm.startswith(_LIB_DIRS):
        return True
    return any(part in norm for part in ("site-packages", "dist-packages"))


@dataclass
class FrameView:
    """One frame as the page shows it, with the session's own copy of its locals."""

    index: int
    filename: str
    lineno: int
    funcname: str
    module: str
    lines: list[str]
    first_line: int
    locals: dict[str, Any]
    globals: dict[str, Any]
    library: bool

    def source(self) -> list[tuple[int, str, bool]]:
        """(line number, text, is the current line) for every captured line."""
        return [
            (self.first_line + i, text.rstrip("\r\n"), self.first_line + i == self.lineno)
            for i, text in enumerate(self.lines)
        ]

    def local_items(self) -> list[tuple[str, str]]:
        """(name, bounded repr) of the captured locals, sorted by name."""
        return [
            (k, safe_repr(v, 400))
            for k, v in sorted(self.locals.items(), key=lambda kv: str(kv[0]))
        ]


def _first_line(filename: str, lineno: int, lines: list[str]) -> int:
    """Where the captured lines start; they were taken centred on ``lineno``.

    The capture does not record its window, so the centre is assumed; when the file is
    still readable here the guess is checked against it, and corrected if it is off
    (a window cut short by the end of the file).
    """
    n = len(lines)
    guess = max(1, lineno - n // 2)
    try:
        import linecache

        current = linecache.getline(filename, lineno)
    except Exception:
        current = ""
    if not current or not (guess <= lineno < guess + n) or lines[lineno - guess] == current:
        return guess
    for i, text in enumerate(lines):
        if text == current and lineno - i >= 1:
            return lineno - i
    return guess


def chain_frames(ctx: Mapping[str, Any], *, live: bool, start: int = 0) -> list[FrameView]:
    """The frames of a context chain, outermost first, each with copied locals.

    ``ctx`` is the root (the innermost frame); ``__up`` leads outwards.  Indices start at
    ``start`` (a chained exception's frames follow the ones before them on the page).
    """
    nodes: list[Mapping[str, Any]] = []
    seen: set[int] = set()
    node: Any = ctx
    while isinstance(node, Mapping) and id(node) not in seen and len(nodes) < MAX_FRAMES:
        seen.add(id(node))
        nodes.append(node)
        node = node.get("__up")
    nodes.reverse()
    fresh: dict[str, dict[str, Any]] = {}
    frames = []
    for index, node in enumerate(nodes):
        trc = node.get("__trc")
        trc = trc if isinstance(trc, Mapping) else {}
        info = trc.get("frame")
        if isinstance(info, (tuple, list)) and len(info) >= 3:
            filename, lineno, funcname = str(info[0]), int(info[1] or 0), str(info[2])
            lines = [str(x) for x in (info[3] or [])] if len(info) > 3 else []
        else:
            filename, lineno, funcname, lines = "?", 0, str(trc.get("funcname", "?")), []
        module = str(trc.get("module") or "")
        values = {k: v for k, v in node.items() if k not in LINK_KEYS}
        frames.append(
            FrameView(
                index=start + index,
                filename=filename,
                lineno=lineno,
                funcname=funcname,
                module=module,
                lines=lines,
                first_line=_first_line(filename, lineno, lines) if lines else lineno,
                locals=values,
                globals=frame_globals(module, live, fresh),
                library=is_library_file(filename),
            )
        )
    return frames


def frame_globals(module: str, live: bool, fresh: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Globals for evaluating in a frame of ``module`` (see the module docstring)."""
    ns = module_globals(module, live)
    if ns is not None:
        return ns
    if module not in fresh:
        fresh[module] = {"__name__": module or "__otrace_eval__", "__builtins__": builtins}
    return fresh[module]


def describe(ctx: Mapping[str, Any]) -> tuple[str, str]:
    """(headline, the full exception text or "") of a context, for the page's header."""
    trc = ctx.get("__trc")
    trc = trc if isinstance(trc, Mapping) else {}
    stack = safe_str(trc.get("exc_stack", "") or "", MAX_VALUE)
    lines = [line for line in stack.splitlines() if line.strip()]
    if lines:
        return lines[-1], stack
    tid = context_id(ctx)
    try:
        kind, name, ctxid, _ = parse_trace_id(tid)
        return f"{kind[:-1] if kind.endswith('s') else kind} in {name} ({ctxid})", ""
    except ValueError:
        return tid or "trace context", ""


# -- chained exceptions --------------------------------------------------------------------
RELATION_TEXT = {
    "__cause__": "The above exception was the direct cause of the following exception:",
    "__context__": "During handling of the above exception, another exception occurred:",
}


@dataclass
class FrameGroup:
    """The frames of one exception of a chain: ``frames[start:end]`` of the page session.

    ``relation`` says how the *next* group follows from this one (empty for the last).
    """

    title: str
    start: int
    end: int
    relation: str = ""

    @property
    def relation_text(self) -> str:
        return RELATION_TEXT.get(self.relation, "")


def exception_groups(
    ctx: Mapping[str, Any], *, live: bool, title: str = ""
) -> tuple[list[FrameView], list[FrameGroup]]:
    """Every exception of a context's chain as its own group of frames, oldest cause first.

    The causes are the ``__cause__`` / ``__context__`` entries captured with the context
    (see :mod:`otrace.contexts.chain`); without any, one group holds the whole chain.
    """
    nodes: list[tuple[Mapping[str, Any], str]] = [(ctx, "")]
    seen = {id(ctx)}
    node: Any = ctx
    while len(nodes) < 20:
        link = next(
            (k for k in ("__cause__", "__context__") if isinstance(node.get(k), Mapping)), ""
        )
        if not link or id(node[link]) in seen:
            break
        node = node[link]
        seen.add(id(node))
        nodes.append((node, link))
    frames: list[FrameView] = []
    groups: list[FrameGroup] = []
    for i in range(len(nodes) - 1, -1, -1):
        node, relation = nodes[i]  # how the exception after this one follows from it
        start = len(frames)
        frames.extend(chain_frames(node, live=live, start=start))
        trc = node.get("__trc")
        text = safe_str(trc.get("exception", ""), 500) if isinstance(trc, Mapping) else ""
        groups.append(FrameGroup(title if i == 0 and title else text, start, len(frames), relation))
    return frames, groups


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


# -- evaluation ----------------------------------------------------------------------------
_CAPTURE: ContextVar[io.StringIO | None] = ContextVar("otrace_tb_capture", default=None)
# sys.stdout is process-wide, so is the lock that installs the routing stream on it.
_route_lock = threading.Lock()


class RoutedStream:
    """A ``sys.stdout`` stand-in: writes go to the evaluating thread's buffer, if any.

    Every other write, and every other attribute, goes to the stream it wraps.
    """

    def __init__(self, target: Any) -> None:
        self._target = target

    def write(self, text: str) -> int:
        buf = _CAPTURE.get()
        if buf is not None:
            return buf.write(text)
        return self._target.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _CAPTURE.get() is None:
            self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def route_stdout() -> None:
    """Make sure ``sys.stdout`` is a :class:`RoutedStream` (once; again if replaced since)."""
    with _route_lock:
        if not isinstance(sys.stdout, RoutedStream):
            sys.stdout = RoutedStream(sys.stdout)


@dataclass
class EvalResult:
    """What one evaluation printed, the repr of its value (expressions) and its error."""

    output: str = ""
    value: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"output": self.output, "value": self.value, "error": self.error}


def _bounded(text: str, limit: int) -> str:
    return (
        text
        if len(text) <= limit
        else text[:limit] + f"\n... ({len(text) - limit} more characters)"
    )


def compile_input(code: str, filename: str) -> tuple[Any, Any]:
    """Compile typed code as (statements or None, final expression or None).

    A trailing expression is evaluated separately so its value can be shown, as an
    interactive prompt does.
    """
    tree = ast.parse(code, filename, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)  # type: ignore[attr-defined]
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT  # only code that awaits becomes a coroutine
    body = compile(tree, filename, "exec", flags=flags) if tree.body else None
    expr = compile(last, filename, "eval", flags=flags) if last is not None else None
    return body, expr


def _awaits(*codes: Any) -> bool:
    return any(c is not None and c.co_flags & inspect.CO_COROUTINE for c in codes)


def evaluate(
    code: str, frame: FrameView, loop: Any = None, await_timeout: float = 10.0
) -> EvalResult:
    """Run ``code`` in ``frame``'s namespace; never raises.  Called in a worker thread.

    Code that uses ``await`` runs as a task on ``loop`` (the program's, for a live page),
    bounded by ``await_timeout`` seconds; without a loop it is refused.
    """
    route_stdout()
    buf = io.StringIO()
    token = _CAPTURE.set(buf)
    result = EvalResult()
    filename = f"<frame {frame.index}: {frame.funcname}>"
    try:
        body, expr = compile_input(code, filename)
        value = None
        if _awaits(body, expr):
            if loop is None:
                raise AwaitError(
                    "await works on live pages only (nothing runs this program's loop)"
                )
            coro = run_async(body, expr, frame.globals, frame.locals)
            value = run_coroutine(coro, await_timeout, loop)
        else:
            if body is not None:
                exec(body, frame.globals, frame.locals)
            if expr is not None:
                value = eval(expr, frame.globals, frame.locals)
        if expr is not None and value is not None:
            try:
                result.value = _bounded(repr(value), MAX_VALUE)
            except Exception as exc:
                result.value = safe_repr(value)
                result.error = f"repr failed: {safe_repr(exc)}"
            frame.locals["_"] = value
    except AwaitError as exc:
        result.error = str(exc)
    except SyntaxError as exc:
        result.error = "".join(traceback.format_exception_only(type(exc), exc))
    except BaseException as exc:  # the typed code's error is the answer, even SystemExit
        tb = exc.__traceback__
        result.error = "".join(
            traceback.format_exception(type(exc), exc, tb.tb_next if tb else None)
        )
    finally:
        _CAPTURE.reset(token)
    result.output = _bounded(buf.getvalue(), MAX_OUTPUT)
    return result
