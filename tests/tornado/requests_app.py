"""A Tornado app for the request-aware shell tests: slow, plain, blocking and failing handlers.

Apart from ValueHandler's traceassert, nothing here knows about otrace: tracking comes from
``otrace.tornado.attach`` alone.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any

import tornado.web

from otrace.tracing import traceassert


class Release:
    """What slow requests wait for: set (from any thread) once, they all finish.

    A ``threading.Event`` to the tests (``set``, ``clear``, ``is_set``); a handler awaits
    :meth:`wait`, an ``asyncio.Event`` of its own loop that is set only then.  So a slow
    request sits at one await, suspended, for as long as a test inspects it (a handler polling
    every 20 ms would now and then be running, and seen so by the shell).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def set(self) -> None:
        with self._lock:
            self._set = True
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: nothing waits there any more
                pass

    def clear(self) -> None:
        with self._lock:
            self._set = False

    def is_set(self) -> bool:
        return self._set

    def wait(self) -> Coroutine[Any, Any, bool]:
        """``asyncio.Event.wait()`` of the running loop, done once this is set (loop thread)."""
        event = asyncio.Event()
        with self._lock:
            if self._set:
                event.set()
            else:
                self._waiters.append((asyncio.get_running_loop(), event))
        return event.wait()


RELEASE = Release()  # slow requests finish once set
SEEN: list[str] = []


async def lookup(key: str) -> str:
    await asyncio.sleep(0.05)
    return f"value-of-{key}"


class SlowHandler(tornado.web.RequestHandler):
    async def get(self) -> None:
        n = self.get_argument("n", "0")
        await RELEASE.wait()  # SLOW-AWAIT
        self.write(f"slow {n}\n")


class HelloHandler(tornado.web.RequestHandler):
    async def get(self) -> None:
        SEEN.append(self.request.uri)
        self.write(f"hello {self.request.uri}\n")


class BlockingHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        blocked_for = 0.3
        time.sleep(blocked_for)  # BLOCKING-LINE
        self.write("blocked\n")


def parse_amount(text: str) -> int:
    return int(text)


class ChainedHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        amount_text = self.get_argument("amount", "x12")
        try:
            parse_amount(amount_text)
        except ValueError as exc:
            raise RuntimeError(f"bad amount {amount_text!r}") from exc
        self.write("ok\n")


class ValueHandler(tornado.web.RequestHandler):
    async def get(self) -> None:
        value = await traceassert(False, label="want_value", action="hold")
        self.write(f"got {value!r}\n")


def make_app() -> tornado.web.Application:
    return tornado.web.Application(
        [
            (r"/slow", SlowHandler),
            (r"/hello.*", HelloHandler),
            (r"/block", BlockingHandler),
            (r"/chained", ChainedHandler),
            (r"/value", ValueHandler),
        ]
    )


def line_of(marker: str) -> int:
    with open(__file__, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if marker in line and "def line_of" not in line and "marker in line" not in line:
                return number
    raise LookupError(marker)
