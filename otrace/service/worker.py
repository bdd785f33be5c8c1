"""An interruptible, abandonable worker thread: where a console's commands touch the program.

Jobs run one at a time on the worker.  :meth:`Worker.interrupt` raises ``KeyboardInterrupt``
in it (asynchronously, at its next Python instruction); a job still running after
:data:`INTERRUPT_GRACE` seconds -- stuck in C code such as ``time.sleep`` or a socket read of
the program's -- is *abandoned*: its thread is left to finish in the background (its result is
dropped) and a fresh worker thread takes the next jobs.  Whatever a job raises, ``BaseException``
included, is handed to ``failed`` and becomes its reply; the worker never dies of it.  An
abandoned job stops holding ``exec_lock`` at once (:func:`otrace.tracing.exec_hold.release_thread`):
the program's traced threads never wait for it.

Thread safety: :meth:`submit`, :meth:`interrupt`, :meth:`current`, :meth:`abandon_current`
and :meth:`stop` from any thread; ``run``, ``failed`` and ``deliver`` are called on the worker.
"""

from __future__ import annotations

import ctypes
import itertools
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from otrace.tracing import exec_hold

INTERRUPT_GRACE = 0.5  # seconds an interrupted job gets to stop before it is abandoned
_numbers = itertools.count(1)

Frames = list[dict[str, Any]]


@dataclass
class Job:
    kind: str  # "exec" | "complete" | "cancel" | "refresh"
    id: int = 0
    text: str = ""
    width: int = 0
    thread: int = 0
    finished: bool = False
    replied: bool = False
    abandoned: bool = False
    interrupted: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Worker:
    """Runs jobs with ``run(job) -> frames``; ``failed(job, exc) -> frames`` for anything
    raised; ``deliver(frames)`` sends a finished job's frames; ``abandoned(job)`` says so.

    :param exempt: thread idents that must never block on a break (the worker adds itself).
    """

    def __init__(
        self,
        name: str,
        run: Callable[[Job], Frames],
        failed: Callable[[Job, BaseException], Frames],
        deliver: Callable[[Frames], None],
        abandoned: Callable[[Job], None],
        exempt: set[int],
    ) -> None:
        self.name = name
        self._run, self._failed, self._deliver, self._abandoned = run, failed, deliver, abandoned
        self._exempt = exempt
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards _current and raising into the worker
        self._current: Job | None = None
        self._generation = 0  # of the live worker thread; an abandoned one sees it changed
        self._stopped = False

    def start(self) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
        threading.Thread(
            target=self._loop,
            args=(generation,),
            name=f"{self.name}-worker-{next(_numbers)}",
            daemon=True,
        ).start()

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def current(self) -> Job | None:
        with self._lock:
            return self._current

    def busy(self) -> bool:
        job = self.current()
        return job is not None and not job.abandoned

    def stop(self) -> None:
        """End the worker (a running job is abandoned)."""
        self._stopped = True
        self._jobs.put(None)
        job = self.current()
        if job is not None:
            self._abandon(job, restart=False)

    # -- the worker thread ------------------------------------------------------------------
    def _loop(self, generation: int) -> None:
        me = threading.get_ident()
        self._exempt.add(me)  # a break on this thread would hang the console
        try:
            while not self._stopped and generation == self._generation:
                job = None
                try:
                    job = self._jobs.get()
                    if job is None:
                        self._jobs.put(None)  # for a replacement worker, if any
                        return
                    self._one(job)
                except BaseException as exc:  # noqa: B036 - a late interrupt must not end us
                    if job is not None and not job.replied:
                        self._finish(job, self._failed(job, exc))
        finally:
            self._exempt.discard(me)

    def _one(self, job: Job) -> None:
        job.thread = threading.get_ident()
        with self._lock:
            self._current = job
        frames: Frames = []
        try:
            try:
                frames = self._run(job)
            except BaseException as exc:  # noqa: B036 - the program may raise anything
                frames = self._failed(job, exc)
        except BaseException as exc:  # noqa: B036 - a second Ctrl-C while handling the first
            frames = self._failed(job, exc)
        self._finish(job, frames)

    def _finish(self, job: Job, frames: Frames) -> None:
        with self._lock:
            job.finished = True  # no interrupt is raised in this thread from now on
            abandoned = job.abandoned
            if not abandoned and self._current is job:
                self._current = None
        if job.interrupted:
            _let_interrupt_fire()
        if abandoned or job.replied:
            return
        job.replied = True
        self._deliver(frames)
        job.done.set()

    # -- interrupting -------------------------------------------------------------------------
    def interrupt(self) -> None:
        """Ctrl-C: stop the running job, or abandon it after INTERRUPT_GRACE.  Blocks the
        caller (the console's reader thread) at most that long."""
        with self._lock:
            job = self._current
            if job is None or job.finished or job.kind == "refresh":
                return
            job.interrupted = True
            _raise_in_thread(job.thread, KeyboardInterrupt)
        if not job.done.wait(INTERRUPT_GRACE):
            self._abandon(job, restart=True)

    def _abandon(self, job: Job, restart: bool) -> None:
        with self._lock:
            if job.finished or job.abandoned:
                return
            job.abandoned = True
            if self._current is job:
                self._current = None
        exec_hold.release_thread(job.thread)  # its exec_lock no longer pauses tracing
        self._abandoned(job)
        if restart and not self._stopped:
            self.start()


def _raise_in_thread(ident: int, exc_type: type[BaseException]) -> None:
    """Raise ``exc_type`` in thread ``ident`` at its next Python instruction."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc_type))


def _let_interrupt_fire() -> None:
    """Give an interrupt raised just before the job finished a place to land harmlessly.

    (Clearing it with ``PyThreadState_SetAsyncExc(id, NULL)`` instead would leave the
    interpreter's eval-breaker flag set on CPython 3.11, and a traced thread then spins.)
    """
    try:
        for _ in range(3):
            pass
    except KeyboardInterrupt:
        pass
