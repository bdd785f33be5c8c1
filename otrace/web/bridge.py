"""/osh/web: the console runs JavaScript in browsers that a Tornado app keeps connected.

Wiring (see docs/WebBridge.rst)::

    BRIDGE = WebBridge()

    class ChatSocket(BridgeSocketMixin, tornado.websocket.WebSocketHandler):
        otrace_bridge = BRIDGE
        def get_current_user(self):            # the app's own authentication
            return self.get_signed_cookie("user")
        def open(self):
            self.otrace_attach()               # appears as /osh/web/<user>
        def on_message(self, message):
            if self.otrace_handle(message):    # an answer for the console
                return
            ...                                # the app's own messages
        def on_close(self):
            self.otrace_detach()

    OShell(..., web_interface=BRIDGE)

and in the page ``<script src="/otrace/otrace-bridge.js"></script>`` then
``otrace.attach(socket)``.  Apps without a socket of their own can mount :func:`routes`
(a ready-made handler at ``<prefix>/ws`` plus the glue file) and call ``otrace.connect``.

Protocol (JSON text frames):

* server -> browser: ``{"stdin": code, "id": n}``; the page evaluates ``code``.
* browser -> server: ``{"stdout": text, "stderr": text, "id": n}``.  Answers without an
  ``id`` (pages using the original glue) answer the oldest outstanding request.
* browser -> server, unasked: ``{"stdout": "", "stderr": text, "log": level}`` -- the page's
  console output and uncaught errors, when forwarding is on.  Announced to the operator only
  when the operator asked for them (:meth:`WebBridge.set_remotelog`, ``remotelog on`` in
  ``/osh/web/<user>``), at most :data:`LOG_BURST` at once and :data:`LOG_RATE` a second per
  browser, each cut to :data:`LOG_TEXT` characters; the rest are counted as dropped.
  Messages longer than :data:`MAX_MESSAGE` characters are not the bridge's.
* server -> browser: ``{"remotelog": true|false}`` switches that forwarding.

Nothing is reachable unless the app mounts a handler; a connection is registered only if the
app says who the user is; origins must match the host (plus ``otrace_origins``).

Thread safety: :meth:`WebBridge.evaluate` and :meth:`WebBridge.send_command` may be called
from any thread except the event loop's (they only reach the loop via ``add_callback``);
everything a handler calls (attach, handle, detach) runs on the event-loop thread.

The handler side (:class:`BridgeSocketMixin`, :class:`BridgeSocketHandler`, :func:`routes`)
lives in :mod:`otrace.web.bridge_socket` and is re-exported here.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import tornado.ioloop
import tornado.web
import tornado.websocket

from otrace import log
from otrace.errors import OTraceError
from otrace.web.bridge_socket import (  # re-exported; it imports this module for hints only
    GLUE_FILE,
    STATIC_DIR,
    BridgeSocketHandler,
    BridgeSocketMixin,
    routes,
)

_logger = log.get_logger("web")


def escape_name(user: str) -> str:
    """A directory name for ``user``: ``%`` and ``/`` escaped, never ``.``, ``..`` or ``~x``."""
    name = user.replace("%", "%25").replace("/", "%2F")
    if name in ("", ".", ".."):
        name = name.replace(".", "%2E") or "%00"
    if name.startswith("~"):
        name = "%7E" + name[1:]
    return name


_REMOTELOG = re.compile(r"\s*otrace\.remotelog\((true|false)\)\s*;?\s*")
MAX_MESSAGE = 1_000_000  # characters of a message the bridge parses at all
LOG_TEXT = 2_000  # characters of one unasked message announced
LOG_BURST = 20  # unasked messages announced at once ...
LOG_RATE = 5.0  # ... and per second after that, per browser


class Connection:
    """One registered browser.  Created on the event-loop thread."""

    def __init__(self, bridge: WebBridge, name: str, user: str, socket: Any):
        self.bridge = bridge
        self.name = name
        self.user = user
        self.socket = socket
        self.loop = tornado.ioloop.IOLoop.current()
        self.thread_id = threading.get_ident()
        self.pending: dict[int, concurrent.futures.Future] = {}  # guarded by bridge._lock
        self.closed = False
        self.logs_wanted = False  # the operator asked for this page's console (remotelog)
        self._tokens = float(LOG_BURST)  # token bucket for unasked messages (loop thread)
        self._refilled = time.monotonic()
        self.dropped = 0

    def may_announce(self) -> bool:
        """One unasked message may be announced now (asked for, within the rate)."""
        if not self.logs_wanted:
            self.dropped += 1
            return False
        now = time.monotonic()
        self._tokens = min(float(LOG_BURST), self._tokens + (now - self._refilled) * LOG_RATE)
        self._refilled = now
        if self._tokens < 1.0:
            self.dropped += 1
            return False
        self._tokens -= 1.0
        return True

    def announce(self, text: str) -> None:
        """Announce an unasked message (size-limited; says how many were dropped)."""
        text = text if len(text) <= LOG_TEXT else text[:LOG_TEXT] + "..."
        if self.dropped and self.logs_wanted:
            text += f"  ({self.dropped} earlier message{'' if self.dropped == 1 else 's'} dropped)"
            self.dropped = 0
        log.announce(text)

    def send(self, payload: dict[str, Any]) -> None:
        """Queue a message for the browser.  Any thread."""
        self.loop.add_callback(self._write, json.dumps(payload))

    def _write(self, text: str) -> None:  # event-loop thread
        if self.closed:
            return
        try:
            done = self.socket.write_message(text)
        except tornado.websocket.WebSocketClosedError:
            self.bridge.unregister(self)
            return
        done.add_done_callback(lambda f: f.cancelled() or f.exception())


class WebBridge:
    """The live tree of connected browsers, and the requests sent to them.

    Also implements the original ``web_interface`` protocol on the instance:
    ``root_depth``, ``get_root_tree``, ``set_web_hook``, ``send_command``, ``trace_output``.

    ``_lock`` is taken on the loop (browsers come and go, answers arrive) and by the shell's
    threads (requests).  Theirs is call-free -- ``_conns`` is replaced, never changed, so
    reading it takes no lock; a request is filed or forgotten with a plain store or delete --
    so no finalizer can run while they hold it, and the loop never waits for one that waits
    for the loop's thread.
    """

    root_depth = 1

    def __init__(self) -> None:
        self.tree: dict[str, dict[str, Any]] = {}  # /osh/web; name -> {} (kept live)
        self._conns: dict[str, Connection] = {}  # replaced on the loop, never changed
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._hook: Callable[..., Any] | None = None

    # -- registry (event-loop thread) ------------------------------------------------------
    def register(self, user: str, socket: Any) -> Connection:
        """Add a browser for ``user``; its name is unique (``user``, ``user~2``, ...)."""
        base = escape_name(str(user))
        with self._lock:
            name, n = base, 1
            while name in self._conns:
                n += 1
                name = f"{base}~{n}"
            conn = Connection(self, name, str(user), socket)
            conns = dict(self._conns)
            conns[name] = conn
            self._conns = conns
            self.tree[name] = {}
        return conn

    def unregister(self, conn: Connection) -> None:
        """Forget a browser; requests waiting for it fail at once.  Idempotent."""
        with self._lock:
            conn.closed = True
            if self._conns.get(conn.name) is conn:
                self._conns = {n: c for n, c in self._conns.items() if c is not conn}
                self.tree.pop(conn.name, None)
            pending, conn.pending = conn.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(OTraceError(f"Browser {conn.name} disconnected"))

    def names(self) -> list[str]:
        """The connected browsers' names.  Any thread."""
        return list(self._conns)

    def connection(self, name: str) -> Connection:
        """The connected browser ``name``; OTraceError if there is none.  Any thread."""
        conn = self._conns.get(name)
        if conn is None:
            raise OTraceError(f"No such socket: {name} (not connected)")
        return conn

    # -- requests (any thread but the loop's) ----------------------------------------------
    def submit(self, name: str, code: str) -> concurrent.futures.Future:
        """Send ``code`` to browser ``name``; the future gets (stdout, stderr) or an error."""
        conn = self.connection(name)
        switch = _REMOTELOG.fullmatch(code)
        if switch:  # the operator typed otrace.remotelog(...): that is asking for it
            conn.logs_wanted = switch.group(1) == "true"
        fut: concurrent.futures.Future = concurrent.futures.Future()
        req_id = next(self._ids)
        with self._lock:  # call-free (see the class docstring)
            closed = conn.closed
            if not closed:
                conn.pending[req_id] = fut
        if closed:
            raise OTraceError(f"Browser {name} disconnected")
        fut.add_done_callback(lambda _f: self._forget(conn, req_id))
        conn.send({"stdin": code, "id": req_id})
        return fut

    def _forget(self, conn: Connection, req_id: int) -> None:
        with self._lock:  # call-free (see the class docstring); any thread
            pending = conn.pending
            if req_id in pending:
                del pending[req_id]

    def evaluate(self, path_comps: list[str], code: str, timeout: float) -> tuple[str, str]:
        """Run ``code`` in browser ``path_comps[0]`` and wait for (stdout, stderr).

        Raises OTraceError if it is not connected, disconnects, answers garbage or does not
        answer within ``timeout`` seconds.  Never call it on the event-loop thread.
        """
        name = path_comps[0]
        conn = self.connection(name)
        if threading.get_ident() == conn.thread_id:
            raise OTraceError("Cannot wait for a browser on the event-loop thread")
        fut = self.submit(name, code)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise OTraceError(
                f"No answer from browser {name} within {timeout:g}s (web_timeout)"
            ) from None

    def set_remotelog(self, name: str, on: bool) -> None:
        """Ask browser ``name`` to forward (or stop forwarding) its console, and announce what
        it forwards (rate- and size-limited) only while on.  Any thread."""
        conn = self.connection(name)
        conn.logs_wanted = bool(on)
        conn.dropped = 0
        conn.send({"remotelog": bool(on)})

    # -- the original web_interface protocol -------------------------------------------------
    def get_root_tree(self) -> dict[str, dict[str, Any]]:
        return self.tree

    def set_web_hook(self, hook: Callable[..., Any]) -> None:
        self._hook = hook

    def send_command(self, path_comps: list[str], command: str) -> None:
        """Send ``command`` without waiting; the answer goes to :meth:`trace_output`."""
        name = path_comps[0] if path_comps else ""
        try:
            fut = self.submit(name, command)
        except OTraceError:
            self.trace_output(False, [], "", f"No such socket: {name}")
            return

        def deliver(f: concurrent.futures.Future) -> None:
            if f.cancelled():
                return
            exc = f.exception()
            if exc is not None:
                self.trace_output(False, [name], "", str(exc))
            else:
                out, err = f.result()
                self.trace_output(False, [name], out, err)

        fut.add_done_callback(deliver)

    def trace_output(
        self, repeat: bool, path_comps: list[str], stdout: str, stderr: str | None = None
    ) -> None:
        """Forward browser output to the hook (stderr first, then stdout); else announce."""
        hook = self._hook
        if hook is None:
            who = path_comps[0] if path_comps else "?"
            for text in (stderr, stdout):
                if text:
                    log.announce(f"web {who}: {text}")
            return
        if stderr:
            hook("stderr", repeat, path_comps, stderr)
        hook("stdout", repeat, path_comps, stdout)

    # -- answers (event-loop thread) -------------------------------------------------------
    def handle(self, conn: Connection, message: str | bytes) -> bool:
        """Take a message from ``conn``'s socket; False if it is not for the bridge."""
        if len(message) > MAX_MESSAGE:  # not ours to parse: the app sees it (or not)
            return False
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        try:
            msg = json.loads(message)
        except ValueError:
            return False
        if not isinstance(msg, dict) or not ({"stdout", "stderr", "id", "log"} & msg.keys()):
            return False
        if "log" in msg and "id" not in msg:
            if conn.may_announce():
                text = msg.get("stderr") or msg.get("stdout") or ""
                conn.announce(f"web {conn.name} [{str(msg['log'])[:20]}]: {str(text)[:LOG_TEXT]}")
            return True
        with self._lock:
            if "id" in msg:
                fut = conn.pending.pop(msg["id"], None) if _hashable(msg["id"]) else None
            else:  # the original glue: answers come in order
                key = min(conn.pending, default=None)
                fut = conn.pending.pop(key) if key is not None else None
        if fut is None:
            if "id" not in msg and msg.get("stderr"):
                if conn.may_announce():
                    conn.announce(f"web {conn.name}: {str(msg['stderr'])[:LOG_TEXT]}")
            else:
                _logger.debug("late or unknown answer from %s: %.200s", conn.name, message)
            return True
        out, err = msg.get("stdout", ""), msg.get("stderr", "")
        if out is None:
            out = ""
        if err is None:
            err = ""
        if fut.done():
            return True
        if isinstance(out, str) and isinstance(err, str):
            fut.set_result((out, err))
        else:
            fut.set_exception(OTraceError(f"Bad answer from browser {conn.name}: {message[:200]}"))
        return True


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


__all__ = [
    "GLUE_FILE",
    "LOG_BURST",
    "LOG_RATE",
    "LOG_TEXT",
    "MAX_MESSAGE",
    "STATIC_DIR",
    "BridgeSocketHandler",
    "BridgeSocketMixin",
    "Connection",
    "WebBridge",
    "escape_name",
    "routes",
]
