"""The browser side of /osh/web: the websocket handler mixin, a ready-made handler, routes.

Apps mix :class:`BridgeSocketMixin` into their own ``WebSocketHandler`` or mount
:func:`routes`; both hand connections and messages to a :class:`~otrace.web.bridge.WebBridge`
(the shell side, see :mod:`otrace.web.bridge` for the protocol).

Thread safety: everything here runs on the event-loop thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import tornado.web
import tornado.websocket

from otrace import log

if TYPE_CHECKING:
    from otrace.web.bridge import Connection, WebBridge

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
GLUE_FILE = "otrace-bridge.js"
_logger = log.get_logger("web")


def _plain_attr(obj: Any, name: str) -> Any:
    """``obj.name`` as stored (a function set on the class is not bound to ``obj``)."""
    if name in vars(obj):
        return vars(obj)[name]
    for klass in type(obj).__mro__:
        if name in vars(klass):
            value = vars(klass)[name]
            return value.__func__ if isinstance(value, staticmethod) else value
    return None


class BridgeSocketMixin:
    """Mix into a ``tornado.websocket.WebSocketHandler`` to put its browsers in /osh/web.

    Set ``otrace_bridge`` (class attribute or in ``initialize``); optionally
    ``otrace_get_user(handler) -> str | None`` (default: the handler's ``current_user``) and
    ``otrace_origins`` (extra allowed ``Origin`` values).  Call :meth:`otrace_attach` in
    ``open``, :meth:`otrace_handle` first in ``on_message`` and :meth:`otrace_detach` in
    ``on_close``.  All on the event-loop thread.
    """

    otrace_bridge: WebBridge | None = None
    otrace_get_user: Callable[[Any], Any] | None = None
    otrace_origins: tuple[str, ...] = ()
    _otrace_conn: Connection | None = None

    def otrace_user(self) -> str | None:
        """Who the app says this connection belongs to (None: not authenticated)."""
        getter = _plain_attr(self, "otrace_get_user")
        user = getter(self) if getter is not None else self.current_user  # type: ignore[attr-defined]
        if isinstance(user, bytes):
            user = user.decode("utf-8", "replace")
        if user is None or user == "":
            return None
        return user if isinstance(user, str) else str(user)

    def check_origin(self, origin: str) -> bool:
        """Same host as the request (or listed in ``otrace_origins``)."""
        if origin in self.otrace_origins:
            return True
        host = urlsplit(origin).netloc.lower()
        return bool(host) and host == self.request.host.lower()  # type: ignore[attr-defined]

    def otrace_attach(self) -> str | None:
        """Register this browser under its user; returns its /osh/web name, or None if the
        app did not authenticate it (then nothing is registered)."""
        bridge = self.otrace_bridge
        if bridge is None or self._otrace_conn is not None:
            return self._otrace_conn.name if self._otrace_conn else None
        user = self.otrace_user()
        if user is None:
            return None
        self._otrace_conn = bridge.register(user, self)
        return self._otrace_conn.name

    def otrace_handle(self, message: str | bytes) -> bool:
        """True if ``message`` was for the console (the app should then ignore it)."""
        conn = self._otrace_conn
        if conn is None or self.otrace_bridge is None:
            return False
        return self.otrace_bridge.handle(conn, message)

    def otrace_detach(self) -> None:
        conn, self._otrace_conn = self._otrace_conn, None
        if conn is not None and self.otrace_bridge is not None:
            self.otrace_bridge.unregister(conn)


class BridgeSocketHandler(BridgeSocketMixin, tornado.websocket.WebSocketHandler):
    """A ready-made bridge socket: refuses (403) connections whose user is unknown."""

    def initialize(
        self,
        bridge: WebBridge,
        get_user: Callable[[Any], Any] | None = None,
        origins: tuple[str, ...] = (),
    ) -> None:
        self.otrace_bridge = bridge
        self.otrace_get_user = get_user
        self.otrace_origins = tuple(origins)

    def prepare(self) -> None:
        if self.otrace_user() is None:
            raise tornado.web.HTTPError(403, "otrace bridge: not authenticated")

    def open(self, *args: str, **kwargs: str) -> None:
        if self.otrace_attach() is None:
            self.close(4403, "not authenticated")

    def on_message(self, message: str | bytes) -> None:
        if not self.otrace_handle(message):
            _logger.debug("ignored message on bridge socket: %.200r", message)

    def on_close(self) -> None:
        self.otrace_detach()


def routes(
    bridge: WebBridge,
    prefix: str = "/otrace",
    get_user: Callable[[Any], Any] | None = None,
    origins: tuple[str, ...] = (),
) -> list[tuple[str, type, dict[str, Any]]]:
    """URL rules to add to an Application: ``<prefix>/ws`` (the bridge socket; users come
    from ``get_user(handler)``, default the handler's ``get_current_user``) and
    ``<prefix>/otrace-bridge.js`` (the page glue)."""
    prefix = prefix.rstrip("/")
    return [
        (
            prefix + "/ws",
            BridgeSocketHandler,
            {"bridge": bridge, "get_user": get_user, "origins": origins},
        ),
        (prefix + r"/(otrace-bridge\.js)", tornado.web.StaticFileHandler, {"path": STATIC_DIR}),
    ]
