"""``/osh/requests`` and ``/osh/tasks``: running requests and asyncio tasks as directories.

Each request or task is a small mapping computed when it is read:

* ``handler`` / ``request`` -- the live objects (requests only);
* ``task`` -- the asyncio task, ``state`` -- pending, cancelling, done, cancelled, failed;
* ``awaiting`` -- the await chain, outermost first, down to the innermost awaitable;
* ``frame`` -- the innermost program frame of that chain (standard library and installed
  packages skipped, unless nothing else is there), as a :class:`FrameContext` whose ``__up``
  leads to the outer coroutines' frames: browsed and evaluated like a trace context.

``ls -l`` shows one summary line per entry (:meth:`LiveNode.summary`).  Nothing here imports
a web framework; the server integration fills the runtime's ``requests`` table.

Thread rules: made and read on the shell's thread.  The coroutines looked at are suspended
(the loop runs one at a time and only resumes them on its own thread); a frame seen while its
coroutine runs is reported as ``running``.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import Any

from otrace.contexts.capture import build_chain
from otrace.contexts.record import FrameContext
from otrace.contexts.safe import safe_repr, safe_str
from otrace.requests import RequestRecord, RequestTable

MAX_CHAIN = 200

_LIB_DIRS = tuple(
    os.path.normcase(p)
    for p in {
        sysconfig.get_paths().get("stdlib", ""),
        sysconfig.get_paths().get("platstdlib", ""),
        sysconfig.get_paths().get("purelib", ""),
        sysconfig.get_paths().get("platlib", ""),
    }
    if p
)
_OWN_DIR = os.path.normcase(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def is_program_file(filename: str) -> bool:
    """False for the standard library, installed packages, otrace itself and ``<...>``."""
    if filename.startswith("<"):
        return False
    norm = os.path.normcase(filename)
    if norm.startswith(_LIB_DIRS) or norm.startswith(_OWN_DIR + os.sep):
        return False
    return "site-packages" not in norm and "dist-packages" not in norm


# -- await chains --------------------------------------------------------------------------
def _frame_of(obj: Any) -> FrameType | None:
    for attr in ("cr_frame", "gi_frame", "ag_frame"):
        frame = getattr(obj, attr, None)
        if frame is not None:
            return frame
    return None


def _awaited(obj: Any) -> Any:
    """What ``obj`` (a coroutine, generator or task) waits on now, or None."""
    for attr in ("cr_await", "gi_yieldfrom", "ag_await"):
        if hasattr(obj, attr):
            return getattr(obj, attr, None)
    get_coro = getattr(obj, "get_coro", None)  # an awaited task: follow into its coroutine
    if get_coro is not None and not _done(obj):
        try:
            return get_coro()
        except Exception:
            return None
    return None


def _done(obj: Any) -> bool:
    try:
        return bool(obj.done())
    except Exception:
        return True


def await_chain(coro: Any) -> list[Any]:
    """``coro`` and everything it awaits, outermost first (bounded, cycle-safe)."""
    chain: list[Any] = []
    seen: set[int] = set()
    obj = coro
    while obj is not None and id(obj) not in seen and len(chain) < MAX_CHAIN:
        seen.add(id(obj))
        chain.append(obj)
        obj = _awaited(obj)
    return chain


def chain_frames(chain: list[Any]) -> list[tuple[FrameType, int]]:
    """(frame, line) of every suspended coroutine in ``chain``, outermost first."""
    out = []
    for obj in chain:
        frame = _frame_of(obj)
        if frame is not None:
            out.append((frame, frame.f_lineno))
    return out


def is_running(chain: list[Any]) -> bool:
    return any(
        getattr(obj, "cr_running", False) or getattr(obj, "gi_running", False) for obj in chain
    )


def program_frames(frames: list[tuple[FrameType, int]]) -> list[tuple[FrameType, int]]:
    """``frames`` cut after the innermost program frame (all of them if there is none)."""
    for i in range(len(frames) - 1, -1, -1):
        if is_program_file(frames[i][0].f_code.co_filename):
            return frames[: i + 1]
    return frames


def describe_awaitable(obj: Any) -> str:
    frame = _frame_of(obj)
    if frame is not None:
        code = frame.f_code
        return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
    return safe_repr(obj, 200)


def where(chain: list[Any]) -> str:
    """``file:line in function`` where the chain waits (its innermost program frame)."""
    if not chain:
        return "finished"
    if is_running(chain):
        return "running"
    frames = program_frames(chain_frames(chain))
    if not frames:
        return "waiting on " + describe_awaitable(chain[-1])
    frame, line = frames[-1]
    return f"{os.path.basename(frame.f_code.co_filename)}:{line} in {frame.f_code.co_name}"


def frame_context(chain: list[Any]) -> FrameContext | None:
    """The innermost program frame of ``chain`` as a browsable frame snapshot."""
    frames = program_frames(chain_frames(chain))
    if not frames:
        return None
    values, trc = build_chain(frames, context_lines=5, deep=False)
    return FrameContext(values, trc)


def task_state(task: Any) -> str:
    try:
        if not task.done():
            cancelling = getattr(task, "cancelling", None)
            return "cancelling" if cancelling is not None and cancelling() else "pending"
        if task.cancelled():
            return "cancelled"
        return "failed" if task.exception() is not None else "done"
    except Exception:
        return "?"


# -- nodes ---------------------------------------------------------------------------------
class LiveNode(Mapping):
    """A mapping computed from live state; ``ls -l`` shows its :meth:`summary`."""

    keys_: tuple[str, ...] = ()

    def summary(self) -> str:
        raise NotImplementedError

    def entry(self, name: str) -> Any:
        raise KeyError(name)

    def __getitem__(self, name: str) -> Any:
        if name not in self.keys_:
            raise KeyError(name)
        return self.entry(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_)

    def __len__(self) -> int:
        return len(self.keys_)

    def __repr__(self) -> str:
        return self.summary()


def _request_line(rec: RequestRecord) -> str:
    method, uri, remote, handler = (safe_str(x, 200) for x in rec.describe())
    return f"{method} {uri}  {handler}  {remote}  {rec.duration:.3f}s"


class RequestNode(LiveNode):
    """One request in flight (``/osh/requests/r17``)."""

    keys_ = ("handler", "request", "task", "awaiting", "frame", "where")

    def __init__(self, rec: RequestRecord, table: RequestTable) -> None:
        self.rec = rec
        self.table = table

    def chain(self) -> list[Any]:
        coro = self.rec.coro
        return await_chain(coro) if coro is not None else []

    def summary(self) -> str:
        return f"{_request_line(self.rec)}  {where(self.chain())}"

    def entry(self, name: str) -> Any:
        rec = self.rec
        if name == "handler":
            return rec.handler
        if name == "request":
            return rec.request
        if name == "task":
            task = task_of(rec, self.table)
            if task is None:
                raise KeyError(name)
            return task
        if name == "awaiting":
            return [describe_awaitable(obj) for obj in self.chain()]
        if name == "where":
            return where(self.chain())
        ctx = frame_context(self.chain())
        if ctx is None:
            raise KeyError(name)
        return ctx


class DoneNode(LiveNode):
    """A finished request (``/osh/requests/done/r17``): what it was and how it ended."""

    keys_ = ("method", "uri", "remote_ip", "handler_class", "status", "duration", "exception")

    def __init__(self, rec: RequestRecord) -> None:
        self.rec = rec

    def summary(self) -> str:
        exc = self.rec.exception
        tail = f"  {type(exc).__name__}: {safe_str(exc, 200)}" if exc is not None else ""
        return f"{_request_line(self.rec)}  status {self.rec.status}{tail}"

    def entry(self, name: str) -> Any:
        rec = self.rec
        if name == "duration":
            return round(rec.duration, 6)
        if name in ("status", "exception"):
            return getattr(rec, name)
        return dict(
            zip(("method", "uri", "remote_ip", "handler_class"), rec.describe(), strict=True)
        )[name]


class DoneDir(Mapping):
    """``/osh/requests/done``: the last ``max_recent`` finished requests."""

    def __init__(self, table: RequestTable) -> None:
        self.table = table

    def __getitem__(self, name: str) -> DoneNode:
        rec = self.table.get_done(name)
        if rec is None:
            raise KeyError(name)
        return DoneNode(rec)

    def __iter__(self) -> Iterator[str]:
        return iter([rec.id for rec in self.table.finished()])

    def __len__(self) -> int:
        return len(self.table.done)


class RequestsDir(Mapping):
    """``/osh/requests``: one directory per request in flight, plus ``done``."""

    def __init__(self, table: RequestTable) -> None:
        self.table = table

    def __getitem__(self, name: str) -> Any:
        if name == "done":
            return DoneDir(self.table)
        rec = self.table.get(name)
        if rec is None:
            raise KeyError(name)
        return RequestNode(rec, self.table)

    def __iter__(self) -> Iterator[str]:
        return iter([rec.id for rec in self.table.running()] + ["done"])

    def __len__(self) -> int:
        return len(self.table.active) + 1


# -- tasks ---------------------------------------------------------------------------------
def all_tasks(loop: Any) -> list[Any]:
    """Every unfinished task of ``loop`` (from any thread; retried if the set changes)."""
    aio = sys.modules.get("asyncio")
    if aio is None or loop is None:
        return []
    for _ in range(10):
        try:
            return list(aio.all_tasks(loop))
        except RuntimeError:
            continue
    return []


def task_name(task: Any) -> str:
    try:
        name = str(task.get_name())
    except Exception:
        name = f"task-{id(task):x}"
    return name.replace("/", "|") or f"task-{id(task):x}"


def request_of(task: Any, table: RequestTable) -> RequestRecord | None:
    """The running request whose coroutine ``task`` runs, if any."""
    try:
        coro = task.get_coro()
    except Exception:
        return None
    for rec in table.running():
        if rec.coro is coro:
            return rec
    return None


def task_of(rec: RequestRecord, table: RequestTable) -> Any:
    """The task running a request's coroutine (looked up when asked: tracking costs less)."""
    if rec.task is None and rec.coro is not None:
        for task in all_tasks(table.loop):
            try:
                if task.get_coro() is rec.coro:
                    rec.task = task
                    break
            except Exception:
                continue
    return rec.task


class TaskNode(LiveNode):
    """One asyncio task (``/osh/tasks/Task-12``)."""

    keys_ = ("task", "state", "coroutine", "awaiting", "frame", "where", "request")

    def __init__(self, task: Any, table: RequestTable) -> None:
        self.task = task
        self.table = table

    def chain(self) -> list[Any]:
        try:
            coro = self.task.get_coro()
        except Exception:
            return []
        return await_chain(coro) if coro is not None and not self.task.done() else []

    def summary(self) -> str:
        coro = describe_coroutine(self.task)
        rec = request_of(self.task, self.table)
        what = f"request {rec.id} {_request_line(rec)}" if rec is not None else coro
        return f"{task_state(self.task)}  {what}  {where(self.chain())}"

    def entry(self, name: str) -> Any:
        if name == "task":
            return self.task
        if name == "state":
            return task_state(self.task)
        if name == "coroutine":
            return self.task.get_coro()
        if name == "awaiting":
            return [describe_awaitable(obj) for obj in self.chain()]
        if name == "where":
            return where(self.chain())
        if name == "request":
            rec = request_of(self.task, self.table)
            if rec is None:
                raise KeyError(name)
            return RequestNode(rec, self.table)
        ctx = frame_context(self.chain())
        if ctx is None:
            raise KeyError(name)
        return ctx


def describe_coroutine(task: Any) -> str:
    try:
        coro = task.get_coro()
    except Exception:
        return "?"
    qualname = getattr(coro, "__qualname__", None) or type(coro).__name__
    return f"{qualname}()"


class TasksDir(Mapping):
    """``/osh/tasks``: the unfinished tasks of the program's loop (``table.loop``)."""

    def __init__(self, table: RequestTable) -> None:
        self.table = table

    def _named(self) -> dict[str, Any]:
        named: dict[str, Any] = {}
        for task in all_tasks(self.table.loop):
            name = task_name(task)
            if name in named:
                name = f"{name}@{id(task):x}"
            named[name] = task
        return named

    def __getitem__(self, name: str) -> TaskNode:
        task = self._named().get(name)
        if task is None:
            raise KeyError(name)
        return TaskNode(task, self.table)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._named()))

    def __len__(self) -> int:
        return len(self._named())
