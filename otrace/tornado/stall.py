"""The stall watchdog: notice when the event loop does not turn for ``stall_ms``.

With ``set stall_ms 100`` the loop runs a heartbeat every ``stall_ms/2`` (one timer
callback) and a watchdog thread wakes as often to look at it.  When the heartbeat is late by
more than ``stall_ms``, the watchdog takes the loop thread's stack right then
(``sys._current_frames()``) and records a ``stalls`` context: the frames with the innermost
one's locals, the task or callback that was running, and -- once the loop is back -- how long
it did not turn (``__trc["stalled_ms"]``, to within ``stall_ms/2``).  One context per stall.
Off (0) by default: then there is no thread and no heartbeat.

Thread rules: :func:`configure` from any thread; the heartbeat runs on the loop thread; the
watchdog thread only reads the heartbeat, frames and the current task, and records.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any

from otrace.contexts import capture
from otrace.contexts.record import TraceContext
from otrace.contexts.safe import safe_repr
from otrace.contexts.store import STORE
from otrace.log import announce, get_logger
from otrace.params import PARAMS
from otrace.vfs.asyncview import is_program_file

log = get_logger("tornado.stall")


class Watchdog:
    """Watches one asyncio loop; :meth:`start` and :meth:`stop` from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stall_ms: int) -> None:
        self.loop = loop
        self.threshold = stall_ms / 1000
        self.interval = self.threshold / 2
        self.last = time.monotonic()
        self.loop_thread: int | None = None
        self.current: TraceContext | None = None  # the stall being seen, until the loop is back
        self.wakeups = 0
        self._stop = threading.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._thread = threading.Thread(target=self._watch, name="otrace-stall", daemon=True)

    def start(self) -> None:
        self.loop.call_soon_threadsafe(self._beat)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        try:
            self.loop.call_soon_threadsafe(self._cancel)
        except RuntimeError:  # the loop is closed
            pass

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    # -- loop thread -------------------------------------------------------------------
    def _beat(self) -> None:
        now = time.monotonic()
        if self.loop_thread is None:
            self.loop_thread = threading.get_ident()
        ctx = self.current
        if ctx is not None:
            self.current = None
            ctx.trc["stalled_ms"] = round((now - self.last) * 1000, 1)
            announce(f"{ctx.id} loop back after {ctx.trc['stalled_ms']:g} ms")
        self.last = now
        if not self._stop.is_set():
            self._timer = self.loop.call_later(self.interval, self._beat)

    # -- watchdog thread ---------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.wakeups += 1
            late = time.monotonic() - self.last - self.interval
            if late > self.threshold and self.current is None and self.loop_thread is not None:
                try:
                    self.current = self._record(late)
                except Exception:
                    log.exception("recording a stall failed")

    def _record(self, late: float) -> TraceContext | None:
        frame = sys._current_frames().get(self.loop_thread)  # type: ignore[arg-type]
        if frame is None:
            return None
        frames = list(reversed(capture.outer_frames(frame)))
        del frame
        if _waiting_for_io(frames):
            # the loop sits in select(): it is idle, only late to be scheduled by the OS
            # (a busy machine); no program code holds it
            return None
        values, trc = capture.build_chain(frames, context_lines=5, deep=False, outer_locals=True)
        trc["stall_ms"] = PARAMS.stall_ms
        trc["seen_after_ms"] = round((late + self.interval) * 1000, 1)
        trc["running"] = _running(self.loop, frames)
        trc["thread"] = "event loop"
        ctx = TraceContext("stalls", _name_of(frames), "", values, trc)
        STORE.add(ctx)
        announce(f"{ctx.id} event loop stalled: {trc['where']}")
        return ctx


def _waiting_for_io(frames: list[tuple[Any, int]]) -> bool:
    if not frames:
        return False
    code = frames[-1][0].f_code
    return code.co_name in ("select", "poll", "control") and code.co_filename.endswith(
        "selectors.py"
    )


def _running(loop: asyncio.AbstractEventLoop, frames: list[tuple[Any, int]]) -> str:
    """The task or callback the loop was running (as text)."""
    try:
        task = asyncio.current_task(loop)
    except Exception:
        task = None
    if task is not None:
        return safe_repr(task, 300)
    for frame, _ in frames:  # Handle._run of asyncio: its self is the callback
        if frame.f_code.co_name == "_run" and frame.f_code.co_filename.endswith("events.py"):
            return safe_repr(frame.f_locals.get("self"), 300)
    return "?"


def _name_of(frames: list[tuple[Any, int]]) -> str:
    """``Class.function`` of the innermost program frame (else the innermost frame)."""
    chosen = frames[-1][0] if frames else None
    for frame, _ in reversed(frames):
        if is_program_file(frame.f_code.co_filename):
            chosen = frame
            break
    if chosen is None:
        return "loop"
    self_obj = chosen.f_locals.get("self")
    name = chosen.f_code.co_name
    return f"{type(self_obj).__name__}.{name}" if self_obj is not None else name


_watchdog: Watchdog | None = None
_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def configure(loop: asyncio.AbstractEventLoop | None) -> None:
    """Watch ``loop`` (None: stop watching) with the current ``stall_ms``.  Any thread."""
    global _loop
    _loop = loop
    _apply()


def current() -> Watchdog | None:
    return _watchdog


def _apply() -> None:
    global _watchdog
    with _lock:
        old, _watchdog = _watchdog, None
        if old is not None:
            old.stop()
        if _loop is not None and PARAMS.stall_ms > 0 and not _loop.is_closed():
            _watchdog = Watchdog(_loop, PARAMS.stall_ms)
            _watchdog.start()


def _on_param(name: str, old: Any, new: Any) -> None:
    if name == "stall_ms":
        _apply()


PARAMS.add_listener(_on_param)
