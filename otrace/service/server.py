"""The service: accepts consoles on a UNIX socket and gives each its own session.

::

    service = Service(new_session, program="shop", banner="...")
    service.listen()                     # default path, or listen("/run/shop/otrace.sock")
    sock = service.connect_local(shell.session)   # the embedded terminal is a client too
    ...
    service.stop("shutdown")

A connection is accepted on the listener thread; the peer's credentials are checked there
before a byte is read (:mod:`otrace.service.peer`), and an accepted one gets a
:class:`~otrace.service.client.ClientSession` with its own threads.  Trace announcements
reach every console through its bounded queue; a change made by one console to what all
share (traces, parameters, holds, patches) is announced to the others, naming who made it.
Everything is written to the audit log (:mod:`otrace.service.audit`).

Thread safety: :meth:`listen`, :meth:`connect_local` and :meth:`stop` from any thread
(``stop`` is idempotent); :meth:`announce` from any thread, program threads included (it
only queues); the rest runs on the service's own threads.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import selectors
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from otrace.errors import OTraceError
from otrace.events import Announcement, ContextRecorded, ContextRemoved
from otrace.log import get_logger
from otrace.runtime import Runtime, default
from otrace.service import listing, paths
from otrace.service.audit import AuditLog
from otrace.service.client import ClientSession
from otrace.service.peer import Peer, check_peer, peer_of
from otrace.service.protocol import encode

log = get_logger("service")


class Service:
    """The otrace service of this process.

    :param new_session: makes the shell session of a newly attached console.
    :param program: the name shown by ``otrace ps`` and used in the default socket name.
    :param banner: shown by consoles when they attach.
    :param runtime: whose events reach the consoles (default: the process's runtime).
    """

    def __init__(
        self,
        new_session: Callable[[], Any],
        *,
        program: str | None = None,
        banner: str = "",
        runtime: Runtime | None = None,
    ) -> None:
        self.new_session = new_session
        self.program = program or paths.program_name()
        self.banner = banner
        self.runtime = runtime if runtime is not None else default()
        self.params = self.runtime.params
        self.path: str | None = None
        self.started = time.time()
        self.audit = AuditLog()
        # what this service offers beyond protocol v1's first messages (``welcome``'s caps)
        self.capabilities: tuple[str, ...] = (listing.CAPABILITY,)
        self._clients: list[ClientSession] = []
        self._snapshot: tuple[ClientSession, ...] = ()  # read without the lock by announce
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._stopped = False
        self._hooked = False
        self._log_handler = _ConsoleLogHandler(self)
        _SERVICES.add(self)

    # -- identity -----------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        return {"program": self.program, "pid": os.getpid(), "socket": self.path or ""}

    def info(self) -> dict[str, Any]:
        """What ``otrace ps`` shows.  Any thread."""
        with self._lock:
            consoles = sum(1 for c in self._clients if c.attached.is_set())
        return {
            **self.identity(),
            "consoles": consoles,
            "started": self.started,
            "ppid": os.getppid(),
        }

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def clients(self) -> list[ClientSession]:
        with self._lock:
            return list(self._clients)

    # -- listening ----------------------------------------------------------------------
    def listen(self, path: str | None = None) -> str:
        """Open the UNIX socket (default path: see :mod:`otrace.service.paths`) and start
        accepting; returns the path.  Idempotent."""
        if self._listener is not None:
            return self.path or ""
        if path is None:
            directory = paths.socket_dir()
            paths.ensure_private_dir(directory)
            paths.clean_stale(directory)
            path = paths.default_socket_path(self.program)
        else:
            path = os.path.abspath(path)
        paths.prepare_socket_path(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_mask = os.umask(0o177)  # the socket is born 0600: no window where others connect
        try:
            sock.bind(path)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old_mask)
        os.chmod(path, 0o600)
        sock.listen(16)
        self.path = path
        self.audit.path = path[: -len(paths.SUFFIX)] + paths.AUDIT_SUFFIX
        self._listener = sock
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(
            target=self._accept_loop, name="otrace-service", daemon=True
        )
        self._thread.start()
        log.info("otrace service listening on %s", path)
        return path

    def _accept_loop(self) -> None:
        assert self._listener is not None
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopped:
                ready = selector.select()
                if self._stopped:
                    break
                if any(key.fileobj == self._wake_r for key, _ in ready):
                    continue
                try:
                    conn, _ = self._listener.accept()
                except OSError:
                    continue
                try:
                    self._accept(conn)
                except Exception:  # one bad connection never stops the listener
                    log.exception("accepting a console failed")
                    with contextlib.suppress(OSError):
                        conn.close()
        finally:
            selector.close()

    def _accept(self, conn: socket.socket) -> None:
        peer = peer_of(conn)  # before a single byte is read
        reason = check_peer(peer)
        if reason is not None:
            self.audit.record(peer, "-", "-", "ref", reason)
            log.warning("refused a console: %s", reason)
            conn.settimeout(1.0)
            with contextlib.suppress(OSError):
                conn.sendall(encode({"t": "refused", "msg": reason}))
            conn.close()
            return
        self._serve(conn, peer, self.new_session(), own_session=True, local=False)

    def connect_local(self, session: Any) -> socket.socket:
        """A console for this process's own terminal: returns the client end of a socket
        pair whose other end is served with ``session`` (which stays open when it detaches).
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        peer = Peer(os.getpid(), os.getuid(), os.getgid())
        self._serve(ours, peer, session, own_session=False, local=True)
        return theirs

    def _serve(
        self, conn: socket.socket, peer: Peer, session: Any, *, own_session: bool, local: bool
    ) -> ClientSession:
        client = ClientSession(
            self, conn, peer, next(self._numbers), session, own_session=own_session, local=local
        )
        with self._lock:
            self._clients.append(client)
            self._snapshot = tuple(self._clients)
            first = len(self._clients) == 1
        if first:
            self._hook_events()
        client.start()
        return client

    def _forget(self, client: ClientSession) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
            self._snapshot = tuple(self._clients)
            last = not self._clients
        if last:
            self._unhook_events()

    # -- events to consoles ---------------------------------------------------------------
    # Subscribed to the runtime's bus only while a console is attached: with none, the
    # runtime's announcements go to stderr as before.  Subscribers run on the emitting
    # (program) thread: they only queue.
    def _hook_events(self) -> None:
        with self._lock:
            if self._hooked:
                return
            self._hooked = True
        for event_type, fn in self._subscriptions():
            self.runtime.events.subscribe(event_type, fn)
        logging.getLogger("otrace").addHandler(self._log_handler)

    def _unhook_events(self) -> None:
        with self._lock:
            if not self._hooked or self._clients:
                return
            self._hooked = False
        for event_type, fn in self._subscriptions():
            self.runtime.events.unsubscribe(event_type, fn)
        logging.getLogger("otrace").removeHandler(self._log_handler)

    def _subscriptions(self) -> list[tuple[type, Callable[[Any], None]]]:
        """The bus events consoles hear, and who takes them (hooked and unhooked together)."""
        return [
            (Announcement, self._on_announcement),
            (ContextRecorded, self._on_context),
            (ContextRemoved, self._on_context),
        ]

    def _on_announcement(self, event: Announcement) -> None:
        text = event.text  # on the traced thread: as little as possible
        for client in self._snapshot:
            if client.receiving:
                client.queue.put_announcement(text)

    def announce(self, text: str) -> None:
        """Queue ``text`` for every console; never blocks.  Any thread."""
        for client in self._snapshot:
            client.announce(text)

    def announce_except(self, origin: ClientSession, text: str) -> None:
        for client in self.clients():
            if client is not origin:
                client.announce(text)

    def _on_context(self, event: ContextRecorded | ContextRemoved) -> None:
        if getattr(event.ctx, "kind", "") == "breaks":  # BRK: appears or goes in the prompts
            # (the snapshot, not the lock: this runs on a program thread, which must not wait
            # for a service thread -- one that a finalizer, run by a collection under the
            # lock, may have blocked on a lock of this very program thread)
            for client in self._snapshot:
                client.request_refresh()

    # -- stopping -----------------------------------------------------------------------
    def stop(self, reason: str = "the service stopped") -> None:
        """Say ``bye`` to every console, stop listening, remove the socket.  Any thread."""
        if self._stopped:
            return
        self._stopped = True
        for client in self.clients():
            client.close(reason)
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            if self.path:
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = -1
        self._unhook_events()

    # -- fork -------------------------------------------------------------------------------
    def _after_fork_in_child(self) -> None:
        """In a forked child: drop what belongs to the parent's service and, if it was
        listening, listen again on a socket of this process (named with its pid).

        Runs on the forking thread of the child, the only thread there.  The parent's
        consoles are not inherited: their sockets are closed here (never shut down, which
        would cut the parent's connection too) and the child starts with none.  Neither
        the parent's socket file nor its audit log is touched.
        """
        self._lock = threading.Lock()  # another thread may have held it at the fork
        for client in self._clients:
            with contextlib.suppress(OSError):
                client.sock.close()
        self._clients = []
        self._snapshot = ()
        if self._hooked:
            self._hooked = False
            bus = self.runtime.events
            bus.unsubscribe(Announcement, self._on_announcement)
            bus.unsubscribe(ContextRecorded, self._on_context)
            bus.unsubscribe(ContextRemoved, self._on_context)
            logging.getLogger("otrace").removeHandler(self._log_handler)
        listening = self._listener is not None and not self._stopped
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()  # our copy only: the parent's socket file stays
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        old_path = self.path
        self._listener, self._thread, self.path = None, None, None
        self._wake_r = self._wake_w = -1
        self._numbers = itertools.count(1)
        self.started = time.time()
        self.audit = AuditLog()
        if listening and old_path:
            try:
                self.listen(child_socket_path(old_path, self.program))
            except (OSError, OTraceError) as exc:
                log.error("otrace: the forked worker cannot listen for consoles: %s", exc)


def child_socket_path(parent_path: str, program: str) -> str | None:
    """Where a forked child listens: the default path of this pid if the parent used the
    default one, else the parent's path with ``-<pid>`` before its suffix."""
    parsed = paths.parse_name(parent_path)
    if (
        parsed is not None
        and parsed[0] == program
        and os.path.dirname(parent_path) == paths.socket_dir()
    ):
        return None
    base, ext = os.path.splitext(parent_path)
    return f"{base}-{os.getpid()}{ext or paths.SUFFIX}"


# Every service of this process (process-wide by nature: a fork concerns them all).
_SERVICES: weakref.WeakSet[Service] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for service in list(_SERVICES):
        try:
            service._after_fork_in_child()
        except Exception:  # a fork must never fail because of otrace
            log.exception("otrace: re-creating the service after a fork failed")


# registered after threading's own hook, so threads can be started here
os.register_at_fork(after_in_child=_after_fork_in_child)


class _ConsoleLogHandler(logging.Handler):
    """otrace's own log records (warnings and up) to attached consoles, through their queues.

    Not to the local console: the program's terminal already shows what is logged to it.
    """

    def __init__(self, service: Service) -> None:
        super().__init__(logging.WARNING)
        self.service = service

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"otrace {record.levelname.lower()}: {record.getMessage()}"
        except Exception:
            return
        for client in self.service._snapshot:
            if client.receiving and not client.local:
                client.queue.put_announcement(text)
