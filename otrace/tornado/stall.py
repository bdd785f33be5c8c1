"""The stall watchdog: notice when the event loop does not turn for ``stall_ms``.

With ``set stall_ms 100`` the loop runs a heartbeat every ``stall_ms/2`` (one timer
callback) and a watchdog thread wakes as often to look at it.  When the heartbeat is late by
more than ``stall_ms``, the watchdog takes the loop thread's stack right then
(``sys._current_frames()``) and records a ``stalls`` context: the frames with the innermost
one's locals, the task or callback that was running, and -- once the loop is back -- how long
it did not turn (``__trc["stalled_ms"]``, to within ``stall_ms/2``).  One context per stall.
Off (0) by default: then there is no thread and no heartbeat.

Thread rules: :func:`configure` from any thread; the heartbeat runs on the loop thread; the
watchdog thread only reads the heartbeat, frames and the current task, and records (through
the runtime's recorder).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import weakref
from typing import Any

from otrace.contexts import capture
from otrace.contexts import frames as _frames
from otrace.contexts.record import TraceContext
from otrace.contexts.safe import safe_repr
from otrace.log import get_logger
from otrace.runtime import Runtime
from otrace.vfs.asyncview import is_program_file

log = get_logger("tornado.stall")


class Watchdog:
    """Watches one asyncio loop; :meth:`start` and :meth:`stop` from any thread."""

    def __init__(self, rt: Runtime, loop: asyncio.AbstractEventLoop, stall_ms: int) -> None:
        self.rt = rt
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
            self.rt.announce(f"{ctx.id} loop back after {ctx.trc['stalled_ms']:g} ms")
        self.last = now
        if not self._stop.is_set():
            self._timer = self.loop.call_later(self.interval, self._beat)

    # -- watchdog thread ---------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.wakeups += 1
            late = time.monotonic() - self.last - self.interval
            if (
                late > self.threshold
                and self.current is None
                and self.loop_thread is not None
                and self.loop.is_running()  # a stopped loop is not a stalled one
            ):
                try:
                    self.current = self._record(late)
                except Exception:
                    log.exception("recording a stall failed")

    def _record(self, late: float) -> TraceContext | None:
        frame = sys._current_frames().get(self.loop_thread)  # type: ignore[arg-type]
        if frame is None:
            return None
        frames = list(reversed(_frames.outer_frames(frame)))
        del frame
        if _waiting_for_io(frames):
            # the loop sits in select(): it is idle, only late to be scheduled by the OS
            # (a busy machine); no program code holds it
            return None
        values, trc = capture.build_chain(frames, context_lines=5, deep=False, outer_locals=True)
        trc["stall_ms"] = round(self.threshold * 1000)
        trc["seen_after_ms"] = round((late + self.interval) * 1000, 1)
        trc["running"] = _running(self.loop, frames)
        trc["thread"] = "event loop"
        ctx, _ = self.rt.recorder.record(
            "stalls",
            _name_of(frames),
            "",
            values,
            trc,
            say=[lambda c: f"{c.id} event loop stalled: {trc['where']}"],
        )
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


class _Watch:
    """What one runtime watches: its loop and its watchdog (while ``stall_ms`` > 0)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.dog: Watchdog | None = None
        self.lock = threading.Lock()


_watches: weakref.WeakKeyDictionary[Runtime, _Watch] = weakref.WeakKeyDictionary()


def configure(rt: Runtime, loop: asyncio.AbstractEventLoop | None) -> None:
    """Watch ``loop`` for ``rt`` (None: stop watching) with its ``stall_ms``.  Any thread."""
    watch = _watches.get(rt)
    if watch is None:
        watch = _watches[rt] = _Watch()
        ref = weakref.ref(rt)

        def on_param(name: str, old: Any, new: Any) -> None:
            live = ref()
            if name == "stall_ms" and live is not None:
                _apply(live)

        rt.params.add_listener(on_param)
    watch.loop = loop
    _apply(rt)


def current(rt: Runtime) -> Watchdog | None:
    """The running watchdog of ``rt``, if any.  Any thread."""
    watch = _watches.get(rt)
    return watch.dog if watch is not None else None


def _apply(rt: Runtime) -> None:
    watch = _watches[rt]
    with watch.lock:
        old, watch.dog = watch.dog, None
        if old is not None:
            old.stop()
        loop, stall_ms = watch.loop, rt.params.stall_ms
        if loop is not None and stall_ms > 0 and not loop.is_closed():
            watch.dog = Watchdog(rt, loop, stall_ms)
            watch.dog.start()
