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

What the jobs do in the session (run a line, complete, refresh the prompt; the frames they
answer with) is :class:`~otrace.service.jobs.ConsoleJobs`; this module owns the connection:
the hello, the frames read and written, the threads, and the session's lifetime.

``lock`` is enforced in the service (:mod:`otrace.service.lock`), not in the console: while
locked, every line is a password attempt and nothing else runs, whatever keys it sends.

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
from otrace.service.jobs import ConsoleJobs
from otrace.service.lock import ConsoleLock
from otrace.service.outqueue import OutputQueue
from otrace.service.peer import Peer
from otrace.service.protocol import VERSION, FrameReader, ProtocolError, encode
from otrace.service.worker import Job, Worker

if TYPE_CHECKING:
    from otrace.service.server import Service

log = get_logger("service")

HELLO_TIMEOUT = 10.0


class ClientSession(ConsoleJobs):
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
                **self.service.identity(),
                "state": self._state(),
            }
        )

    # -- jobs: handed to the worker (ConsoleJobs runs them) ---------------------------------
    def _submit(self, job: Job) -> None:
        if self.worker.busy() and job.kind in ("exec", "cancel"):
            self._reply_error(job, "A command is still running (Ctrl-C interrupts it)")
            return
        self.worker.submit(job)

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


def _encode_safe(msg: dict[str, Any]) -> bytes:
    try:
        return encode(msg)
    except (ProtocolError, TypeError, ValueError):
        log.warning("dropped an unencodable frame of type %s", msg.get("t"))
        return b""
