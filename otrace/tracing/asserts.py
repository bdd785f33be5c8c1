"""``traceassert``: a conditional breakpoint written in the program's code.

Call from any thread.  ``action="break"`` blocks the calling thread (refused, with a message,
on a thread that runs an asyncio loop); ``action="hold"`` must be awaited from a coroutine on
the running loop: ``await traceassert(ok, "label", action="hold")``.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Generator
from types import FrameType
from typing import Any

from otrace import _default, holds
from otrace.contexts import capture
from otrace.contexts import frames as _frames
from otrace.tracing import debugger


class Ready:
    """An awaitable that is already complete (``await`` gives None at once)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return None
        yield  # pragma: no cover - makes this a generator

    def __repr__(self) -> str:
        return "<otrace ready awaitable>"


READY = Ready()

# code flags of the frames a held task awaits through (coroutines, generator-based ones)
_AWAITING = inspect.CO_COROUTINE | inspect.CO_ITERABLE_COROUTINE | inspect.CO_ASYNC_GENERATOR


def await_chain(frame: FrameType | None) -> list[tuple[FrameType, int]]:
    """The held task's own frames as (frame, line), innermost first: ``frame`` and its
    callers up to the first one that is not a coroutine's -- where the event loop's
    machinery begins.  Hidden frames are left out, as in ``frames.outer_frames``.

    The loop's frames (``run_forever``, ``_run_once``, ``Handle._run``, the server's
    ``main``) are the same for every held request and say nothing about this one; keeping
    them would cost each of 10,000 held requests several KiB.
    """
    out: list[tuple[FrameType, int]] = []
    first = True
    while frame is not None and (first or frame.f_code.co_flags & _AWAITING):
        if not _frames.is_hidden(frame):
            out.append((frame, frame.f_lineno))
        frame, first = frame.f_back, False
    return out


def traceassert(condition: Any, label: str = "", action: str | None = None) -> Any:
    """Record a trace context when ``condition`` is false.

    * true: returns None (for ``action="hold"``, an already-completed awaitable);
    * false, ``trace_active`` off: ``raise AssertionError(label)`` (nothing under ``-O``);
    * false, ``trace_active`` on: a context from the caller's frame -- kind ``asserts``
      (``breaks`` for ``"break"``, ``holds`` for ``"hold"``), Name ``Class.func`` when the
      caller has a truthy local ``self``, else ``func``; label ``label`` -- then:
      ``"break"`` blocks until resumed, ``"hold"`` returns an awaitable completed by
      ``resume``, ``"pdb"``/``"ipdb"`` start the debugger, anything else returns None.

    ``assert_context`` sets the source lines kept per frame; above 0 outer frames keep
    their locals too.  A hold keeps the held task's own frames only (its chain of awaiting
    coroutines), not the event loop's frames below them.
    """
    if condition:
        return READY if action == "hold" else None
    recorder = _default.get().recorder
    params = recorder.params
    if not params.trace_active:
        if __debug__:
            raise AssertionError(label)
        return None  # pragma: no cover - python -O
    frame = sys._getframe(1)
    kind, note = recorder.resolve_kind("asserts", action, holds.running_loop() is not None)
    if note.endswith(" refused"):  # break, pdb, ipdb on a thread that must not block
        note += ": this thread runs an event loop (or the console); use action='hold'"
    elif note:
        note = "hold ignored: no asyncio event loop runs in this thread"
    context_lines = params.assert_context
    outer = await_chain(frame) if kind == "holds" else _frames.outer_frames(frame)
    frames = list(reversed(outer))
    values, trc = capture.build_chain(
        frames,
        context_lines=context_lines,
        deep=params.deep_copy,
        outer_locals=context_lines > 0,
        lazy=True,
    )
    trc["argstr"] = _frames.format_args(frame)
    trc["task"] = capture.current_task_name()
    funcname = frame.f_code.co_name
    self_obj = frame.f_locals.get("self")
    try:
        has_self = bool(self_obj)
    except Exception:
        has_self = self_obj is not None
    name = f"{type(self_obj).__name__}.{funcname}" if has_self else funcname
    del frame, frames
    lines = [lambda c: c.id]
    if note:
        lines.append(lambda c: f"{c.id}: {note}")
    ctx, live = recorder.record(kind, name, label, values, trc, say=lines)
    if isinstance(live, holds.Break):
        live.wait()
        return None
    if isinstance(live, holds.Hold):
        return live
    if action in ("pdb", "ipdb") and not note:
        debugger.start_debugger(action, _default.get().tracer)
        return None
    return READY if action == "hold" else None
