"""What an attached console's commands do, on the console's worker thread.

:class:`ConsoleJobs` is the half of :class:`~otrace.service.client.ClientSession` that runs
in the session: a line (``exec``), a completion, a Ctrl-C at the prompt (``cancel``), a
prompt refresh.  Each job answers with protocol frames (``out`` pieces, then ``done`` with
the prompt state) that the worker hands to the client's output queue; the connection half
(socket, reader, writer, hello, lifetime) is in :mod:`otrace.service.client`.

While the console is locked every line is a password attempt (:mod:`otrace.service.lock`)
and completion offers nothing.  Lines that change what every console sees (``trace``,
``set`` ...) are announced to the other consoles.

Thread safety: everything here runs on the console's worker thread (the only thread that
touches the program's objects for this console), except :meth:`ConsoleJobs._on_abandoned`,
called by the thread that gave up on a stuck job (the reader at Ctrl-C, or whichever thread
closes the console), and ``_detach_soon``, on a short thread of its own after ``quit``.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any, cast

from otrace.service.lock import ConsoleLock
from otrace.service.outqueue import OutputQueue
from otrace.service.peer import Peer
from otrace.service.protocol import split_text
from otrace.service.worker import Job, Worker
from otrace.shell.output import Result

if TYPE_CHECKING:
    from otrace.service.client import ClientSession
    from otrace.service.server import Service

#: commands whose effect every console shares: a console running one tells the others
SHARED_COMMANDS = frozenset(
    {"trace", "untrace", "tag", "untag", "edit", "unpatch", "rm", "del", "save", "resume"}
)


class ConsoleJobs:
    """Mixin for :class:`~otrace.service.client.ClientSession`: the jobs of its worker."""

    service: Service
    session: Any
    peer: Peer
    number: int
    user: str
    queue: OutputQueue
    closed: threading.Event
    worker: Worker
    lock: ConsoleLock
    _refresh_queued: bool

    def close(self, reason: str = "") -> None:
        raise NotImplementedError  # ClientSession's

    def _do(self, job: Job) -> list[dict[str, Any]]:
        if job.kind == "exec":
            return self._exec(job)
        if job.kind == "complete":
            return self._complete(job)
        if job.kind == "cancel":
            return self._cancel(job)
        self._refresh_queued = False
        return [{"t": "state", "state": self._state()}]

    def _cancel(self, job: Job) -> list[dict[str, Any]]:
        """Ctrl-C at a prompt: drop pending multi-line code, or a lock being set up."""
        if self.lock.engaged:
            chunks = [("err", text, "text") for text in self.lock.cancel()]
        else:
            chunks = []
            with contextlib.suppress(Exception):
                self.session.cancel_code()
        return self._result_frames(job, chunks, "", "")

    def _deliver(self, frames: list[dict[str, Any]]) -> None:
        for msg in frames:
            self.queue.put_reply(msg)

    def _failed(self, job: Job, exc: BaseException) -> list[dict[str, Any]]:
        if job.interrupted and isinstance(exc, KeyboardInterrupt):
            text = "Interrupted"
        else:
            text = f"{type(exc).__name__} raised by the program's objects: {_short(exc)}"
        if job.kind == "complete":
            return [{"t": "completions", "id": job.id, "items": []}]
        if job.kind == "refresh":
            self._refresh_queued = False
            return []
        return self._result_frames(job, [("err", text, "text")], "", "")

    def _exec(self, job: Job) -> list[dict[str, Any]]:
        if self.lock.engaged:
            return self._lock_line(job)
        session = self.session
        if job.width > 10:
            session.width = job.width
        result: Result = session.execute(job.text)
        if job.interrupted and not any(s == "err" for s, _, _ in result.chunks):
            result.error("Interrupted")
        failed = any(s == "err" for s, _, _ in result.chunks)
        self.service.audit.record(
            self.peer, self.user, self.number, "err" if failed else "ok", job.text
        )
        if not failed:
            self._tell_others(job.text)
        action, arg = result.action, result.action_arg
        if action == "quit":
            action = "detach"
        elif action == "lock":
            action, arg = "", ""
            self.lock.lock()
        frames = self._result_frames(job, result.chunks, action, arg)
        if action == "detach":
            threading.Thread(target=self._detach_soon, daemon=True).start()
        return frames

    def _detach_soon(self) -> None:
        # the done frame goes first; the client hangs up, or we do
        if not self.closed.wait(2.0):
            self.close()

    def _tell_others(self, line: str) -> None:
        words = line.split()
        if not words:
            return
        first = words[0]
        if first in SHARED_COMMANDS or (first == "set" and len(words) > 2):
            if first == "set" and words[1] == "password":
                line = "set password ..."
            who = f"console {self.number} ({self.user}, pid {self.peer.pid})"
            self.service.announce_except(cast("ClientSession", self), f"*** {who}: {line.strip()}")

    def _lock_line(self, job: Job) -> list[dict[str, Any]]:
        errors, outcome = self.lock.answer(job.text)
        if outcome:  # the password itself is never logged
            self.service.audit.record(self.peer, self.user, self.number, outcome, "(unlock)")
        return self._result_frames(job, [("err", e, "text") for e in errors], "", "")

    def _complete(self, job: Job) -> list[dict[str, Any]]:
        items: list[list[Any]] = []
        if not self.lock.engaged:
            complete = getattr(self.session, "complete", None)
            if complete is None:
                from otrace.shell.completion import complete as complete_line

                found = complete_line(self.session, job.text)
            else:
                found = complete(job.text)
            items = [[c.text, c.start, c.display, c.meta] for c in found]
        return [{"t": "completions", "id": job.id, "items": items}]

    def _result_frames(
        self, job: Job, chunks: list[tuple[str, str, str]], action: str, arg: str
    ) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        for stream, text, kind in chunks:
            pieces = split_text(text)
            for n, piece in enumerate(pieces, 1):
                frame = {"t": "out", "id": job.id, "stream": stream, "text": piece, "kind": kind}
                if n < len(pieces):
                    frame["more"] = True  # the client joins the pieces again
                frames.append(frame)
        frames.append(
            {"t": "done", "id": job.id, "action": action, "arg": arg, "state": self._state()}
        )
        return frames

    def _state(self) -> dict[str, Any]:
        if self.lock.engaged:
            return self.lock.state()
        params = self.service.params
        try:
            prompt = self.session.prompt()
        except BaseException:  # noqa: B036 - a stale frame's objects may raise anything
            prompt = "> "
        session = self.session
        return {
            "prompt": prompt,
            "pending": bool(getattr(session, "pending_code", False)),
            "in_osh": bool(getattr(session, "in_osh", True)),
            "aliases": {k: list(v) for k, v in getattr(session, "aliases", {}).items()},
            "cwd": list(getattr(session, "cwd", ())),
            "secret": "",
            "locked": False,
            "auto_lock": params.auto_lock if params.password else 0,
            "repeat_interval": params.repeat_interval,
        }

    def _reply_error(self, job: Job, text: str) -> None:
        for msg in self._result_frames(job, [("err", text, "text")], "", ""):
            self.queue.put_reply(msg)

    def _on_abandoned(self, job: Job) -> None:
        """A command stuck in program code was abandoned after Ctrl-C (or at detach)."""
        self.service.audit.record(
            self.peer, self.user, self.number, "int", f"(abandoned) {job.text}"
        )
        if self.closed.is_set():
            return
        if job.kind == "complete":
            self.queue.put_reply({"t": "completions", "id": job.id, "items": []})
            return
        self._reply_error(
            job,
            "Interrupted; the command is still running in the program's code and was "
            "abandoned (it finishes in the background).  The session goes on.",
        )


def _short(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:  # noqa: B036 - its __str__ may raise too
        text = "(unprintable)"
    return text[:200] or "(no message)"
