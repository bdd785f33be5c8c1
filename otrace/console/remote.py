"""A console's handle on its session in the otrace service (the protocol's client side).

:class:`RemoteSession` looks to a console like the shell session it drives: ``execute`` a
line, ``complete`` a line, the ``prompt``; it sends frames (:mod:`otrace.service.protocol`)
and waits for the answers.  A reader thread of its own takes frames off the socket: replies
go to the waiting console thread, announcements to ``on_announce`` and new prompt states to
``on_state`` (both called on the reader thread; a console queues them above its prompt).

Thread safety: one console thread calls the request methods; :meth:`interrupt` and
:meth:`close` may be called from any thread.
"""

from __future__ import annotations

import contextlib
import getpass
import itertools
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from otrace.console.backend import Backend, Editor, Poll
from otrace.errors import OTraceError
from otrace.service.listing import Listing, entries_of
from otrace.service.protocol import VERSION, FrameReader, ProtocolError, encode
from otrace.shell.completion import Completion
from otrace.shell.output import Result

COMPLETION_TIMEOUT = 5.0
LIST_TIMEOUT = 30.0  # seconds a ``list`` request may take before it is given up
UNANSWERED_INTERRUPT = 5.0  # seconds after Ctrl-C with no answer: the service is gone
_ENDED = {"t": "_ended"}


class AttachError(OTraceError):
    """The service cannot be reached, refused us, or is not an otrace service."""


class RemoteSession(Backend):
    """The session behind a console, over ``sock``."""

    def __init__(self, sock: socket.socket, client: str = "console") -> None:
        self.sock = sock
        self.client = client
        self.on_announce: Callable[[str], Any] = lambda text: None
        self.on_state: Callable[[], Any] = lambda: None
        self.welcome: dict[str, Any] = {}
        self.state: dict[str, Any] = {"prompt": "> ", "pending": False, "secret": ""}
        self.ended = threading.Event()
        self.bye = ""
        self.lost = False  # the connection ended without the service saying goodbye
        self._closing = False  # we detach: the end of the connection is expected
        self._ids = itertools.count(1)
        self._replies: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._send_lock = threading.Lock()
        self._reader: threading.Thread | None = None

    # -- connecting ---------------------------------------------------------------------
    def hello(self, mode: str = "attach", timeout: float = 10.0) -> dict[str, Any]:
        """Greet the service; its ``welcome`` (or ``info``).  AttachError if refused."""
        self.sock.settimeout(timeout)
        hello = {"t": "hello", "v": VERSION, "mode": mode, "user": _user(), "client": self.client}
        send_error: OSError | None = None
        try:
            self._send(hello)
        except OSError as exc:  # a refused peer is hung up on: its refusal may still be there
            send_error = exc
        try:
            reader = FrameReader()
            while True:
                data = self.sock.recv(65536)
                if not data:
                    if send_error is not None:
                        raise send_error
                    raise AttachError("the service closed the connection without answering")
                messages = reader.feed(data)
                if messages:
                    break
        except TimeoutError:
            raise AttachError("no answer: not an otrace service?") from None
        except ProtocolError:
            raise AttachError("not an otrace service (it does not speak the protocol)") from None
        except OSError as exc:
            raise AttachError(f"connection failed: {exc.strerror or exc}") from None
        first = messages[0]
        if first["t"] == "refused":
            raise AttachError(f"refused: {first.get('msg', '')}")
        if first["t"] == "bye":
            raise AttachError(str(first.get("msg", "the service hung up")))
        if first["t"] not in ("welcome", "info"):
            raise AttachError(f"unexpected answer {first['t']!r}: not an otrace service?")
        self.sock.settimeout(None)
        if first["t"] == "welcome":
            self.welcome = first
            self.state = dict(first.get("state") or self.state)
            for msg in messages[1:]:
                self._dispatch(msg)
            self._reader = threading.Thread(
                target=self._read_loop, args=(reader,), name="otrace-attach-reader", daemon=True
            )
            self._reader.start()
        return first

    def _send(self, msg: dict[str, Any]) -> None:
        data = encode(msg)
        with self._send_lock:
            self.sock.sendall(data)

    def _send_quietly(self, msg: dict[str, Any]) -> bool:
        try:
            self._send(msg)
            return True
        except (OSError, ProtocolError):
            return False

    def _read_loop(self, reader: FrameReader) -> None:
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                for msg in reader.feed(data):
                    self._dispatch(msg)
        except (OSError, ProtocolError):
            pass
        finally:
            if not self.bye and not self._closing:
                self.lost = True
            self.ended.set()
            self._replies.put(_ENDED)
            with contextlib.suppress(Exception):
                self.on_state()

    def _dispatch(self, msg: dict[str, Any]) -> None:
        kind = msg["t"]
        if kind == "announce":
            self.on_announce(str(msg.get("text", "")))
        elif kind == "dropped":
            n = msg.get("n", 0)
            self.on_announce(
                f"*** otrace: {n} announcement(s) dropped (this console was not reading)"
            )
        elif kind == "state":
            self.state = dict(msg.get("state") or self.state)
            self.on_state()
        elif kind == "bye":
            self.bye = str(msg.get("msg", ""))
            self.ended.set()
            self._replies.put(_ENDED)
        else:
            self._replies.put(msg)

    # -- what a console asks --------------------------------------------------------------
    def execute(
        self, line: str, width: int = 0, poll: Poll | None = None, on_edit: Editor | None = None
    ) -> Result:
        """Run ``line`` in the session (see :meth:`Backend.execute`; a KeyboardInterrupt in
        this thread is Ctrl-C too)."""
        return self._request({"t": "exec", "line": line, "width": width}, poll, on_edit)

    def cancel(self) -> Result:
        """Ctrl-C at the prompt: drop pending code (or a lock being set up)."""
        return self._request({"t": "cancel"}, None, None)

    def _request(
        self,
        msg: dict[str, Any],
        poll: Poll | None,
        on_edit: Editor | None,
    ) -> Result:
        result = Result()
        more = False  # the last piece continues in the next frame
        if self.ended.is_set():
            result.error(self._lost())
            return result
        request_id = next(self._ids)
        if not self._send_quietly({**msg, "id": request_id}):
            result.error(self._lost())
            return result
        interrupted_at = 0.0
        while True:
            try:
                reply = self._replies.get(timeout=0.1)
            except queue.Empty:
                if poll is not None and poll():
                    self.interrupt()
                    interrupted_at = interrupted_at or time.monotonic()
                if interrupted_at and time.monotonic() - interrupted_at > UNANSWERED_INTERRUPT:
                    # the service answers an interrupt within a second; a stopped or hung
                    # process does not: give the operator back their terminal
                    self.bye = "the service does not answer (process stopped or hung?)"
                    self.close()
                    self.lost = True
                    result.error(self._lost())
                    return result
                continue
            except KeyboardInterrupt:
                self.interrupt()
                interrupted_at = interrupted_at or time.monotonic()
                continue
            if reply is _ENDED:
                self._replies.put(_ENDED)
                result.error(self._lost())
                return result
            if reply.get("id") != request_id:
                continue  # a late answer to an abandoned request
            kind = reply["t"]
            if kind == "out":
                stream = "err" if reply.get("stream") == "err" else "out"
                text, kind = str(reply.get("text", "")), str(reply.get("kind") or "text")
                if more and result.chunks:
                    last = result.chunks.pop()
                    text = last[1] + text
                result.chunks.append((stream, text, kind))
                more = bool(reply.get("more"))
            elif kind == "edit":
                self._edit(reply, on_edit)
            elif kind == "done":
                result.action = str(reply.get("action", ""))
                if result.action == "detach":
                    self._closing = True
                result.action_arg = str(reply.get("arg", ""))
                self.state = dict(reply.get("state") or self.state)
                result.incomplete = self.pending_code
                return result

    def _edit(self, reply: dict[str, Any], on_edit: Editor | None) -> None:
        answer: dict[str, Any] = {"t": "edited", "id": reply.get("id")}
        try:
            if on_edit is None:
                raise OTraceError("this console cannot run an editor")
            answer["text"] = on_edit(
                str(reply.get("text", "")),
                str(reply.get("label", "edit")),
                str(reply.get("editor") or ""),
            )
        except OTraceError as exc:
            answer["error"] = str(exc)
        except Exception as exc:
            answer["error"] = f"editor failed: {exc}"
        self._send_quietly(answer)

    def complete(self, text: str) -> list[Completion]:
        """Completions for ``text`` (the line before the cursor), answered by the session."""
        if self.ended.is_set():
            return []
        request_id = next(self._ids)
        if not self._send_quietly({"t": "complete", "id": request_id, "text": text}):
            return []
        for reply in self._answers(request_id, COMPLETION_TIMEOUT):
            if reply is _ENDED:
                return []
            if reply["t"] == "completions":
                return [
                    Completion(str(t), int(s), str(d or ""), str(m or ""))
                    for t, s, d, m in reply.get("items") or []
                ]
        return []  # a slow object: given up on

    def _answers(
        self, request_id: int, timeout: float, interrupt: bool = True
    ) -> Iterator[dict[str, Any]]:
        """The replies to ``request_id`` as they come (``_ENDED`` last if the connection
        ends); after ``timeout`` seconds they stop (and the request is interrupted)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                reply = self._replies.get(timeout=min(left, 0.1))
            except queue.Empty:
                continue
            if reply is _ENDED:
                self._replies.put(_ENDED)  # for whoever asks next
                yield reply
                return
            if reply.get("id") == request_id:  # (not a late answer to an abandoned one)
                yield reply
        if interrupt:
            self.interrupt()

    def offers(self, capability: str) -> bool:
        """Whether the service said (in its ``welcome``) it understands ``capability``."""
        caps = self.welcome.get("caps")
        return isinstance(caps, list) and capability in caps

    def list_contexts(
        self,
        path: str,
        limit: int = 0,
        offset: int = 0,
        summaries: bool = False,
        timeout: float = LIST_TIMEOUT,
    ) -> Listing:
        """The contexts below ``path`` (``/osh/recent``, ``/osh/saved``, deeper, globs) as
        data, newest ``limit`` (0: the session's ``ls_limit``) after skipping ``offset``,
        with their summaries if asked:
        the ``list`` message (:mod:`otrace.service.listing`), for a service that
        :meth:`offers` it.  Errors come back in ``Listing.error``."""
        if self.ended.is_set():
            return Listing([], error=self._lost())
        request_id = next(self._ids)
        msg = {
            "t": "list",
            "id": request_id,
            "path": path,
            "limit": limit,
            "offset": offset,
            "summaries": summaries,
        }
        if not self._send_quietly(msg):
            return Listing([], error=self._lost())
        entries: list[Any] = []
        errors: list[str] = []
        for reply in self._answers(request_id, timeout, interrupt=False):  # (no job to stop)
            if reply is _ENDED:
                return Listing([], error=self._lost())
            kind = reply["t"]
            if kind == "out":  # the request failed in the service (interrupted, ...)
                errors.append(str(reply.get("text", "")))
            elif kind == "done":
                return Listing([], error="; ".join(errors) or "list: no entries came")
            elif kind == "entries":
                if reply.get("error"):
                    return Listing([], error=str(reply["error"]))
                entries += entries_of(reply.get("items"))
                if not reply.get("more"):
                    total, applied = reply.get("total"), reply.get("limit")
                    ls_limit = reply.get("ls_limit")
                    return Listing(
                        entries,
                        total if isinstance(total, int) else len(entries),
                        applied if isinstance(applied, int) else 0,
                        ls_limit=ls_limit if isinstance(ls_limit, int) else 0,
                    )
        return Listing([], error=f"list: no answer in {timeout:g} s")

    def interrupt(self) -> None:
        """Ctrl-C: interrupt the running command.  Any thread."""
        self._send_quietly({"t": "interrupt"})

    def detach(self) -> None:
        """Leave the session (the program runs on).  Any thread."""
        self._closing = True  # before the service can hang up on us
        self._send_quietly({"t": "detach"})
        self.close()

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        self.ended.set()

    def _lost(self) -> str:
        return f"Disconnected: {self.bye}" if self.bye else "Disconnected from the service"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())
