"""Await chains, waiting frames and tasks, read from another thread; the base of live nodes.

For a coroutine (a request's, a task's) :func:`await_chain` follows what it awaits down to
the innermost awaitable; :func:`where` says where it waits (the innermost *program* frame:
the standard library, installed packages and otrace are skipped unless nothing else is
there, or ``running``); :func:`frame_context` snapshots that frame as a
:class:`FrameContext` whose ``__up`` leads to the outer coroutines' frames, browsed and
evaluated like a trace context.  :class:`LiveNode` is a mapping computed when read, shown by
``ls -l`` as one summary line (:mod:`otrace.vfs.live` builds ``/osh/requests`` and
``/osh/tasks`` from them).  Nothing here imports a web framework.

Thread rules: called on the shell's thread.  The coroutines looked at are suspended (the
loop runs one at a time and only resumes them on its own thread); a frame seen while its
coroutine runs is reported as ``running``.  :func:`all_tasks` may be called from any thread.
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
from otrace.contexts.safe import safe_repr

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


def describe_coroutine(task: Any) -> str:
    try:
        coro = task.get_coro()
    except Exception:
        return "?"
    qualname = getattr(coro, "__qualname__", None) or type(coro).__name__
    return f"{qualname}()"
