"""Helpers: a real Tornado server on a free port, its IOLoop in a background thread."""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from collections.abc import Callable

import held_app as test_app
import tornado.httpserver
import tornado.ioloop
import tornado.testing
import tornado.web

import otrace.tornado as otornado


class Server:
    """A Tornado server running in its own thread (its loop is the app's loop)."""

    def __init__(self, make_app: Callable[[], tornado.web.Application] | None = None) -> None:
        self.make_app = make_app or test_app.make_app
        self.port = 0
        self.loop: tornado.ioloop.IOLoop | None = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tornado-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        self.loop = tornado.ioloop.IOLoop.current()
        sock, self.port = tornado.testing.bind_unused_port()
        server = tornado.httpserver.HTTPServer(self.make_app())
        server.add_sockets([sock])
        otornado.attach(loop=self.loop)
        self.loop.add_callback(self._ready.set)
        self.loop.start()
        server.stop()
        self.loop.run_sync(server.close_all_connections, timeout=5)
        self.loop.close(all_fds=True)

    def start(self) -> Server:
        self.thread.start()
        assert self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self.loop is not None and self.thread.is_alive():
            self.loop.add_callback(self.loop.stop)
            self.thread.join(10)

    def get(
        self, path: str, timeout: float = 10, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def get_in_thread(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[threading.Thread, dict]:
        result: dict = {}

        def run() -> None:
            try:
                result["response"] = self.get(path, timeout=30, headers=headers)
            except Exception as exc:  # reported by the test
                result["error"] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread, result


def wait_for(cond: Callable[[], object], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return bool(cond())
