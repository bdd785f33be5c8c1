"""A small Tornado app for the integration tests: a held form handler and a fast one."""

from __future__ import annotations

import tornado.web

from otrace.tornado import HoldAwareMixin
from otrace.tracing import traceassert

DONE: list[str] = []


class GetHandler(HoldAwareMixin, tornado.web.RequestHandler):
    async def get(self) -> None:
        number = self.get_argument("number", "1")
        await traceassert(number != "77", label="hold_check", action="hold")
        DONE.append(number)
        if not self.disconnected:
            self.write(f"reciprocal of {number} = {1.0 / float(number):.6g}\n")


class FastHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("fast\n")


class MethodHandler(HoldAwareMixin, tornado.web.RequestHandler):
    async def get(self) -> None:
        value = int(self.get_argument("value", "0"))
        self.write(await self.compute(value))

    async def compute(self, value: int) -> str:
        return f"value {value}\n"


class BreakHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        traceassert(False, label="loopbreak", action="break")
        self.write("not blocked\n")


def make_app() -> tornado.web.Application:
    return tornado.web.Application(
        [
            (r"/", GetHandler),
            (r"/fast", FastHandler),
            (r"/method", MethodHandler),
            (r"/break", BreakHandler),
        ]
    )
