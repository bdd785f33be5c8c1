"""A Tornado app for the request-aware shell tests: slow, plain, blocking and failing handlers.

Apart from ValueHandler's traceassert, nothing here knows about otrace: tracking comes from
``otrace.tornado.attach`` alone.
"""

from __future__ import annotations

import asyncio
import threading
import time

import tornado.web

from otrace.tracing import traceassert

RELEASE = threading.Event()  # slow requests finish once set
SEEN: list[str] = []


async def lookup(key: str) -> str:
    await asyncio.sleep(0.05)
    return f"value-of-{key}"


class SlowHandler(tornado.web.RequestHandler):
    async def get(self) -> None:
        n = self.get_argument("n", "0")
        while not RELEASE.is_set():
            await asyncio.sleep(0.02)  # SLOW-AWAIT
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
