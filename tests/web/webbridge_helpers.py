"""Helpers for the /osh/web tests: a server thread, websocket clients, waiting."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import tornado.httpclient
import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web
import tornado.websocket

from tornademos import chat_websock

SECRET = "otrace-test-secret"


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Server:
    """An app served on a free port by an IOLoop in its own thread."""

    def __init__(self, make_app: Callable[[], tornado.web.Application]):
        self.make_app = make_app
        self._started = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        assert self._started.wait(10), "server did not start"

    async def _main(self) -> None:
        self.app = self.make_app()
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        server = tornado.httpserver.HTTPServer(self.app)
        server.add_sockets(sockets)
        self.loop = tornado.ioloop.IOLoop.current()
        self._stop = asyncio.Event()
        self._started.set()
        await self._stop.wait()
        server.stop()
        chat = self.app.settings.get("chat")
        for sock in list(chat.sockets if chat else ()):
            sock.close()
        await asyncio.sleep(0.05)
        await server.close_all_connections()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.loop.add_callback(self._stop.set)
        self.thread.join(10)


def user_cookie(name: str, secret: str = SECRET) -> str:
    value = tornado.web.create_signed_value(secret, chat_websock.COOKIE, name)
    return f"{chat_websock.COOKIE}={value.decode()}"


class Clients:
    """Plain Tornado websocket clients, run by their own loop in a thread.

    ``answer(message) -> str | None`` decides what a client replies to ``{"stdin": ...}``.
    """

    def __init__(self) -> None:
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self._started.wait(10)
        self.conns: list[Any] = []

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self._started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def call(self, coro, timeout: float = 20.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def connect(
        self,
        url: str,
        user: str | None,
        answer: Callable[[dict], str | None] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self.call(self._connect(url, user, answer, headers or {}))

    async def _connect(self, url, user, answer, headers):
        if user is not None:
            headers = dict(headers, Cookie=user_cookie(user))
        request = tornado.httpclient.HTTPRequest(url, headers=headers)
        conn = await tornado.websocket.websocket_connect(request)
        conn.user = user
        conn.reader = asyncio.ensure_future(self._read(conn, answer))
        self.conns.append(conn)
        return conn

    async def _read(self, conn, answer) -> None:
        while True:
            text = await conn.read_message()
            if text is None:
                return
            try:
                msg = json.loads(text)
            except ValueError:
                continue
            if "stdin" in msg and answer is not None:
                reply = answer(msg)
                if reply is not None:
                    await conn.write_message(reply)

    def send(self, conn, text: str) -> None:
        async def write():
            await conn.write_message(text)

        self.call(write())

    def close(self, conn) -> None:
        self.call(self._close(conn))

    async def _close(self, conn) -> None:
        conn.close()
        await conn.reader
        if conn in self.conns:
            self.conns.remove(conn)

    def stop(self) -> None:
        for conn in list(self.conns):
            self.close(conn)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def echo_answer(msg: dict) -> str:
    return json.dumps({"stdout": f"ran {msg['stdin']}", "stderr": "", "id": msg["id"]})
