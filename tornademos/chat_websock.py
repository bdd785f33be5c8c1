#!/usr/bin/env python3
"""Chat over WebSockets, with the otrace console able to run JavaScript in every page.

Run ``python tornademos/chat_websock.py [--port 8888] [--addr 127.0.0.1]``, open the page in
a browser or two, sign in by name, and in the console::

    > cd /osh/web
    web> ls
    user1
    web> set safe_mode False
    web> cd user1
    web..user1> $("body").css("background","red")
    [object Object]
    web..user1> repeat "User is typing: "+$("#message").val()

(``$`` is a pinch of jQuery in static/chat.js -- ``css``, ``val``, ``text`` -- so the original
tutorial's lines work; any JavaScript does, e.g. ``document.body.style.background = "red"``.)

Users sign in by name (kept in a signed cookie); the chat socket is an ordinary Tornado
``WebSocketHandler`` with :class:`otrace.web.bridge.BridgeSocketMixin`, so each signed-in
page appears as ``/osh/web/<name>`` while it is open.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import secrets
import sys
from typing import Any

import tornado.escape
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

HERE = os.path.dirname(os.path.abspath(__file__))
if __name__ == "__main__":  # run from a checkout: find the otrace package next to us
    sys.path.insert(0, os.path.dirname(HERE))

from otrace import OShell  # noqa: E402
from otrace.web.bridge import STATIC_DIR, BridgeSocketMixin, WebBridge  # noqa: E402

COOKIE = "chatuser"


class Chat:
    """The room: recent messages and open sockets (event-loop thread only)."""

    def __init__(self, keep: int = 200):
        self.cache: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self.sockets: set[ChatSocketHandler] = set()
        self.ids = itertools.count(1)

    def post(self, message: dict[str, Any]) -> None:
        self.cache.append(message)
        text = json.dumps(message)
        for sock in list(self.sockets):
            try:
                sock.write_message(text)
            except tornado.websocket.WebSocketClosedError:
                self.sockets.discard(sock)


class BaseHandler(tornado.web.RequestHandler):
    def get_current_user(self) -> str | None:
        value = self.get_signed_cookie(COOKIE)
        return value.decode("utf-8") if value else None


class AuthLoginHandler(BaseHandler):
    def get(self) -> None:
        self.render("chat_login.html")

    def post(self) -> None:
        # "username" is the original demo's field name
        name = self.get_argument("username", self.get_argument("name", "")).strip()[:40]
        if not name:
            self.redirect("/auth/login")
            return
        self.set_signed_cookie(COOKIE, name, httponly=True, samesite="Lax")
        self.redirect("/")


class AuthLogoutHandler(BaseHandler):
    def get(self) -> None:
        self.clear_cookie(COOKIE)
        self.redirect("/auth/login")


class MainHandler(BaseHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.render("chat_index.html", messages=list(self.settings["chat"].cache))


class ChatSocketHandler(BridgeSocketMixin, BaseHandler, tornado.websocket.WebSocketHandler):
    """The chat socket; also the otrace bridge for the signed-in user's page."""

    def initialize(self, bridge: WebBridge) -> None:
        self.otrace_bridge = bridge

    @property
    def chat(self) -> Chat:
        return self.settings["chat"]

    def prepare(self) -> None:
        if not self.current_user:  # only signed-in users may open the socket
            raise tornado.web.HTTPError(403)

    def open(self) -> None:
        self.chat.sockets.add(self)
        self.otrace_attach()

    def on_message(self, message: str | bytes) -> None:
        if self.otrace_handle(message):
            return
        try:
            body = tornado.escape.json_decode(message)["body"]
        except (ValueError, KeyError, TypeError):
            return
        if not isinstance(body, str) or not body.strip():
            return
        msg = {"id": next(self.chat.ids), "from": self.current_user, "body": body[:2000]}
        msg["html"] = tornado.escape.to_unicode(
            self.render_string("chat_message.html", message=msg)
        )
        self.chat.post(msg)

    def on_close(self) -> None:
        self.chat.sockets.discard(self)
        self.otrace_detach()


def make_app(
    bridge: WebBridge, cookie_secret: str | None = None, **settings: Any
) -> tornado.web.Application:
    """The chat application; its sockets register with ``bridge``."""
    return tornado.web.Application(
        [
            (r"/", MainHandler),
            (r"/auth/login", AuthLoginHandler),
            (r"/auth/logout", AuthLogoutHandler),
            (r"/login", AuthLoginHandler),
            (r"/logout", AuthLogoutHandler),
            (r"/chatsocket", ChatSocketHandler, {"bridge": bridge}),
            (r"/otrace/(otrace-bridge\.js)", tornado.web.StaticFileHandler, {"path": STATIC_DIR}),
        ],
        cookie_secret=cookie_secret or secrets.token_hex(32),
        login_url="/auth/login",
        template_path=os.path.join(HERE, "templates"),
        static_path=os.path.join(HERE, "static"),
        xsrf_cookies=True,
        chat=Chat(),
        **settings,
    )


async def serve(app: tornado.web.Application, port: int, addr: str, shell: OShell | None) -> None:
    sockets = tornado.netutil.bind_sockets(port, address=addr)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]  # the real one with --port 0
    print(f"chat_websock: Listening on {addr}:{port}", flush=True)
    try:
        while shell is None or not shell.is_shut_down:
            await asyncio.sleep(0.5)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Tornado WebSocket chat with the otrace console")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--addr", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--no-shell", action="store_true", help="serve without the otrace console")
    opts = parser.parse_args(argv)

    bridge = WebBridge()
    app = make_app(bridge)
    shell = None
    if not opts.no_shell:
        shell = OShell(
            globals_dict=globals(),
            locals_dict={"app": app, "bridge": bridge},
            allow_unsafe=True,
            listen=True,  # otrace attach PID opens more consoles
            new_thread=True,
            web_interface=bridge,
        )
        shell.loop()
    try:
        asyncio.run(serve(app, opts.port, opts.addr, shell))
    except KeyboardInterrupt:
        pass
    finally:
        if shell is not None:
            shell.shutdown()


if __name__ == "__main__":
    main()
