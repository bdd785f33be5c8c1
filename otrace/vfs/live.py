"""``/osh/requests`` and ``/osh/tasks``: running requests and asyncio tasks as directories.

Each request or task is a small mapping computed when it is read (see
:mod:`otrace.vfs.asyncview` for the await chains and frames behind ``awaiting``, ``where``
and ``frame``):

* ``/osh/requests/r17``: ``handler``, ``request``, ``task``, ``awaiting``, ``frame``,
  ``where``; ``/osh/requests/done/r17``: what the request was and how it ended;
* ``/osh/tasks/Task-12``: ``task``, ``state``, ``coroutine``, ``awaiting``, ``frame``,
  ``where`` and, for a request's task, ``request``.

Thread rules: made and read on the shell's thread (see :mod:`otrace.vfs.asyncview`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from otrace.contexts.safe import safe_str
from otrace.requests import RequestRecord, RequestTable
from otrace.vfs.asyncview import (
    LiveNode,
    all_tasks,
    await_chain,
    describe_awaitable,
    describe_coroutine,
    frame_context,
    task_name,
    task_state,
    where,
)


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
