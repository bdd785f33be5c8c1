"""The door to the program's event loop: running a function or a coroutine there, waiting.

A *door* is a thread-safe ``callback(fn)`` that makes the loop run ``fn`` soon (Tornado's
``loop.add_callback``, asyncio's ``loop.call_soon_threadsafe``).  :func:`call_on_loop` and
:func:`run_coroutine` are for threads other than the loop's (the shell's): they pass work
through the door and wait for its outcome, every wait bounded, holding no lock.
"""

from __future__ import annotations

import concurrent.futures
import sys
from collections.abc import Callable
from typing import Any

from otrace.errors import OTraceError

LoopDoor = Callable[[Callable[[], None]], Any]


class LoopBusy(TimeoutError):
    """A call started on the event loop but did not finish in time (it may still)."""


class AwaitError(OTraceError):
    """An ``await`` typed at the prompt could not run or did not finish in time."""


def running_loop() -> Any:
    """The asyncio loop running in this thread, or None (no asyncio import cost)."""
    aio = sys.modules.get("asyncio")
    if aio is None:
        return None
    return aio._get_running_loop()


def call_on_loop(door: LoopDoor | None, func: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Run ``func`` on the loop behind ``door`` and wait for its result.

    Without a door, or on a thread that runs an event loop itself (waiting would deadlock),
    ``func`` runs right here.  ``func``'s exception is re-raised here.  TimeoutError if the
    loop has not started ``func`` within ``timeout`` seconds -- it then never runs;
    :class:`LoopBusy` (a TimeoutError) if it started but has not finished within another
    ``timeout`` seconds.  The caller must hold no lock the loop may need.
    """
    if door is None or running_loop() is not None:
        return func()
    fut: concurrent.futures.Future = concurrent.futures.Future()

    def job() -> None:
        if not fut.set_running_or_notify_cancel():
            return
        try:
            fut.set_result(func())
        except BaseException as exc:  # noqa: B036 - handed back to the waiting thread
            fut.set_exception(exc)

    door(job)
    try:
        return fut.result(timeout)
    except concurrent.futures.TimeoutError:
        if fut.cancel():
            raise TimeoutError(f"the event loop did not run {func!r} within {timeout:g}s") from None
    try:
        return fut.result(timeout)
    except concurrent.futures.TimeoutError:
        raise LoopBusy(f"{func!r} started on the event loop but did not finish") from None


def run_coroutine(door: LoopDoor | None, coro: Any, timeout: float) -> Any:
    """Run ``coro`` as a task on the loop behind ``door`` and wait for its result.

    Other requests go on meanwhile.  After ``timeout`` seconds, or on KeyboardInterrupt,
    the task is cancelled and :class:`AwaitError` raised; the coroutine's own exception is
    re-raised here.  For other threads than the loop's (the shell's).
    """
    if door is None or running_loop() is not None:
        coro.close()
        raise AwaitError(
            "await cannot wait here: this thread runs an event loop"
            if door is not None
            else "await needs the program's event loop: call otrace.tornado.attach, "
            "or give OShell an eventloop_callback"
        )
    fut: concurrent.futures.Future = concurrent.futures.Future()
    tasks: list[Any] = []

    def start() -> None:
        if not fut.set_running_or_notify_cancel():
            coro.close()
            return
        try:
            task = sys.modules["asyncio"].ensure_future(coro)
        except BaseException as exc:  # noqa: B036 - handed back to the waiting thread
            coro.close()
            fut.set_exception(exc)
            return
        tasks.append(task)
        task.add_done_callback(lambda t: _copy_outcome(t, fut))

    def cancel() -> None:
        for task in tasks:
            task.cancel()

    door(start)
    try:
        return fut.result(timeout)
    except concurrent.futures.TimeoutError:
        why = f"await did not finish within {timeout:g}s (await_timeout); cancelled"
    except KeyboardInterrupt:
        why = "await interrupted; the task was cancelled"
    if not fut.cancel():
        door(cancel)
    raise AwaitError(why)


def _copy_outcome(task: Any, fut: concurrent.futures.Future) -> None:
    """Hand a finished task's outcome to the thread waiting in ``run_coroutine``."""
    if fut.done():
        return
    if task.cancelled():
        fut.set_exception(AwaitError("await: the task was cancelled"))
    elif task.exception() is not None:
        fut.set_exception(task.exception())
    else:
        fut.set_result(task.result())
