"""Fixtures for the traceback page: a real Tornado server in a thread, real Chromium."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tornado.httpserver
import tornado.testing

from otrace.log import add_sink, remove_sink


class ServerThread:
    """Runs ``make_app()`` (called on the server's own event loop) on a free port."""

    def __init__(self, make_app: Callable[[], Any]) -> None:
        self.make_app = make_app
        self.port = 0
        self.app: Any = None
        self.extra: Any = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="tb-test-server", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                made = self.make_app()
                self.app, self.extra = made if isinstance(made, tuple) else (made, None)
                sock, self.port = tornado.testing.bind_unused_port()
                server = tornado.httpserver.HTTPServer(self.app)
                server.add_sockets([sock])
            except BaseException as exc:
                self.error = exc
                self._ready.set()
                return
            self._ready.set()
            await self._stop.wait()
            server.stop()
            await server.close_all_connections()

        asyncio.run(main())

    def start(self) -> ServerThread:
        self._thread.start()
        assert self._ready.wait(10), "server did not start"
        if self.error:
            raise self.error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def url(self, path: str, host: str = "localhost") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[], Any]], ServerThread]]:
    servers: list[ServerThread] = []

    def start(make_app: Callable[[], Any]) -> ServerThread:
        s = ServerThread(make_app).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def announcements() -> Iterator[list[str]]:
    said: list[str] = []
    add_sink(said.append)
    yield said
    remove_sink(said.append)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    p = context.new_page()
    p.set_default_timeout(15000)
    yield p
    context.close()
