"""One attached console inside the service: its shell session, its threads, its lock.

Each client has three threads of its own, so that nothing it does can stall another client
or the program:

* the **reader** takes frames off the socket and acts on them (``interrupt`` at once);
* the **worker** (:mod:`otrace.service.worker`) runs the session's commands and
  completions -- the only place where the program's objects are touched.  It can be
  interrupted and, if it is stuck in program code, abandoned: the client gets its prompt back
  within a second and a fresh worker thread carries on with the same session;
* the **writer** sends what the :class:`~otrace.service.outqueue.OutputQueue` holds; only it
  ever waits for the client.

``lock`` is enforced here (:mod:`otrace.service.lock`), not in the console: while locked,
every line is a password attempt and nothing else runs, whatever keys the client sends.

Thread safety: :meth:`announce`, :meth:`request_refresh` and :meth:`close` may be called from
any thread (program threads included: they only queue).  Everything else runs on the
client's own threads.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from otrace.errors import OTraceError
from otrace.log import get_logger
from otrace.service import listing
from otrace.service.lock import ConsoleLock
from otrace.service.outqueue import OutputQueue
from otrace.service.peer import Peer
from otrace.service.protocol import VERSION, FrameReader, ProtocolError, encode, split_text
from otrace.service.worker import Job, Worker
from otrace.shell.output import Result

if TYPE_CHECKING:
    from otrace.service.server import Service

log = get_logger("service")

HELLO_TIMEOUT = 10.0
SHARED_COMMANDS = frozenset(
    {"trace", "untrace", "tag", "untag", "edit", "unpatch", "rm", "del", "save", "resume"}
)


class ClientSession:
    """The service side of one console.

    :param shell_session: the :class:`~otrace.shell.session.Session` this console drives.
    :param own_session: close ``shell_session`` when the client goes (not for the local one).
    """

    def __init__(
        self,
        service: Service,
        sock: socket.socket,
        peer: Peer,
        number: int,
        shell_session: Any,
        *,
        own_session: bool = True,
        local: bool = False,
    ) -> None:
        self.service = service
        self.sock = sock
        self.peer = peer
        self.number = number
        self.session = shell_session
        self.own_session = own_session
        self.local = local
        self.user = "-"
        self.started = time.time()
        self.queue = OutputQueue()
        self.closed = threading.Event()
        self.attached = threading.Event()  # hello done (mode attach)
        self.receiving = False  # attached: announcements are queued (a plain flag: hot path)
        self.worker = Worker(
            f"otrace-console-{number}",
            self._do,
            self._failed,
            self._deliver,
            self._on_abandoned,
            service.runtime.holds.no_break_threads,
        )
        self._refresh_queued = False
        self.lock = ConsoleLock(service.params)
        self._edit_answers: dict[int, queue.SimpleQueue[dict[str, Any]]] = {}
        self._threads: list[threading.Thread] = []
        self.on_close: list[Any] = []

    # -- lifetime -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the reader and writer threads (the worker starts at attach)."""
        for target, role in ((self._read_loop, "reader"), (self._write_loop, "writer")):
            t = threading.Thread(
                target=target, name=f"otrace-console-{self.number}-{role}", daemon=True
            )
            self._threads.append(t)
            t.start()

    def close(self, reason: str = "") -> None:
        """End this session (idempotent; any thread): a ``bye`` if ``reason``, then hang up."""
        if self.closed.is_set():
            return
        self.closed.set()
        if reason:
            self.queue.put_reply({"t": "bye", "msg": reason})
        self.queue.close()
        self.worker.stop()  # a stuck command must not keep the session half alive
        self.service._forget(self)
        if self.own_session:
            with contextlib.suppress(Exception):
                self.session.close()
        if self.attached.is_set():
            self.service.audit.record(self.peer, self.user, self.number, "end", "(detached)")
        for callback in self.on_close:
            with contextlib.suppress(Exception):
                callback(self)

    def _hang_up(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()

    # -- from other threads -------------------------------------------------------------
    def announce(self, text: str) -> None:
        """Queue an announcement; never blocks.  Any thread."""
        if self.receiving:
            self.queue.put_announcement(text)

    def request_refresh(self) -> None:
        """Recompute the prompt (e.g. ``BRK:``) on the worker and send it.  Any thread."""
        if not self.attached.is_set() or self._refresh_queued:
            return
        self._refresh_queued = True
        self.worker.submit(Job("refresh"))

    # -- reading ------------------------------------------------------------------------
    def _read_loop(self) -> None:
        reader = FrameReader()
        try:
            self.sock.settimeout(HELLO_TIMEOUT)
            while not self.closed.is_set():
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    if not self.attached.is_set():
                        raise ProtocolError("no hello") from None
                    continue
                if not data:
                    break
                for msg in reader.feed(data):
                    self._on_message(msg)
        except ProtocolError as exc:
            log.info("console %s: %s; closing it", self.number, exc)
            self.service.audit.record(self.peer, self.user, self.number, "bad", str(exc))
            self.queue.put_reply({"t": "bye", "msg": f"protocol error: {exc}"})
        except OSError:
            pass
        except BaseException:  # noqa: B036 - a reader thread never dies noisily
            log.exception("console %s reader failed", self.number)
        finally:
            self.close()

    def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg["t"]
        if not self.attached.is_set():
            if kind != "hello":
                raise ProtocolError("expected hello")
            self._hello(msg)
            return
        if kind == "exec":
            line = str(msg.get("line", ""))
            self._submit(Job("exec", _int(msg.get("id")), line, width=_int(msg.get("width"))))
        elif kind == "cancel":
            self._submit(Job("cancel", _int(msg.get("id"))))
        elif kind == "complete":
            self._submit(Job("complete", _int(msg.get("id")), str(msg.get("text", ""))))
        elif kind == "list":  # otrace's own store, no program object: answered right here
            for frame in self._list(_int(msg.get("id")), msg):
                self.queue.put_reply(frame)
        elif kind == "interrupt":
            self.worker.interrupt()
        elif kind == "edited":
            answers = self._edit_answers.get(_int(msg.get("id")))
            if answers is not None:
                answers.put(msg)
        elif kind == "detach":
            self.close()

    def _hello(self, msg: dict[str, Any]) -> None:
        version = msg.get("v")
        if version != VERSION:
            self.queue.put_reply(
                {"t": "bye", "msg": f"protocol version {version!r} not supported (need {VERSION})"}
            )
            raise ProtocolError(f"client speaks version {version!r}")
        self.user = str(msg.get("user") or "-")[:64]
        if msg.get("mode") == "info":
            self.queue.put_reply({"t": "info", **self.service.info()})
            self.queue.close()
            return
        self.sock.settimeout(None)
        self.attached.set()
        self.receiving = True
        self.service.audit.record(
            self.peer, self.user, self.number, "att", f"(attached: {msg.get('client', '?')})"
        )
        self.session.hooks["editor"] = self._remote_edit  # the operator's own editor
        if self.local:
            self.on_close.append(lambda c: c.session.hooks.pop("editor", None))
        if self.service.params.password and not self.local:
            self.lock.lock()  # a password is set: attaching consoles start locked
        self.worker.start()
        self.queue.put_reply(
            {
                "t": "welcome",
                "v": VERSION,
                "session": self.number,
                "banner": self.service.banner,
                "caps": list(self.service.capabilities),
                **self.service.identity(),
                "state": self._state(),
            }
        )

    # -- jobs (run on the worker) ---------------------------------------------------------
    def _submit(self, job: Job) -> None:
        if self.worker.busy() and job.kind in ("exec", "cancel"):
            self._reply_error(job, "A command is still running (Ctrl-C interrupts it)")
            return
        self.worker.submit(job)

    def _do(self, job: Job) -> list[dict[str, Any]]:
        if job.kind == "exec":
            return self._exec(job)
        if job.kind == "complete":
            return self._complete(job)
        if job.kind == "cancel":
            return self._cancel(job)
        self._refresh_queued = False
        return [{"t": "state", "state": self._state()}]

    def _list(self, msg_id: int, msg: dict[str, Any]) -> list[dict[str, Any]]:
        if self.lock.engaged:
            return [{"t": "entries", "id": msg_id, "error": "list: the console is locked"}]
        return listing.answer(self.session, msg_id, msg)

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
            self.service.announce_except(self, f"*** {who}: {line.strip()}")

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

    # -- editing on the operator's side ---------------------------------------------------
    def _remote_edit(self, text: str, label: str) -> str:
        """The ``editor`` hook: the client edits ``text`` and sends it back (worker thread)."""
        job = self.worker.current()
        edit_id = job.id if job is not None else 0
        answers: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._edit_answers[edit_id] = answers
        try:
            editor = self.service.params.editor or ""
            self.queue.put_reply(
                {"t": "edit", "id": edit_id, "text": text, "label": label, "editor": editor}
            )
            while True:
                try:
                    answer = answers.get(timeout=0.5)
                    break
                except queue.Empty:
                    if self.closed.is_set():
                        raise OTraceError("The console detached while editing") from None
        finally:
            self._edit_answers.pop(edit_id, None)
        if answer.get("error"):
            raise OTraceError(str(answer["error"]))
        return str(answer.get("text", ""))

    # -- writing ------------------------------------------------------------------------
    def _write_loop(self) -> None:
        try:
            while True:
                frames = self.queue.take()
                if frames is None:
                    break
                data = b"".join(_encode_safe(m) for m in frames)
                if data:
                    self.sock.sendall(data)
        except OSError:
            pass
        except BaseException:  # noqa: B036
            log.exception("console %s writer failed", self.number)
        finally:
            self.close()
            self._hang_up()


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _short(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:  # noqa: B036 - its __str__ may raise too
        text = "(unprintable)"
    return text[:200] or "(no message)"


def _encode_safe(msg: dict[str, Any]) -> bytes:
    try:
        return encode(msg)
    except (ProtocolError, TypeError, ValueError):
        log.warning("dropped an unencodable frame of type %s", msg.get("t"))
        return b""
