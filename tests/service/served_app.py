"""A Tornado server with otrace listening and no terminal, for the service tests.

``GET /?n=N`` calls ``Work.step`` N times (trace it and each call is an announcement);
``GET /?number=77`` is held (``traceassert``, as in the torna_trace tutorial).  Prints
``PORT n`` and ``SOCKET path`` once it serves, ``Server stopped`` at the end.
``APP_LISTEN`` names the socket (default: the default path).
"""

from __future__ import annotations

import asyncio
import os

import tornado.ioloop
import tornado.testing
import tornado.web
from tornado.httpserver import HTTPServer

import otrace
import otrace.tornado
from otrace.tracing import traceassert


class Work:
    @staticmethod
    def step(i: int) -> int:
        return i + 1


class Shy:
    """An object whose repr ends the interpreter (if nobody contains it)."""

    def __repr__(self) -> str:
        raise SystemExit(3)


shy = Shy()
counts = {"requests": 0}


class Handler(otrace.tornado.HoldAwareMixin, tornado.web.RequestHandler):
    async def get(self) -> None:
        counts["requests"] += 1
        number = self.get_argument("number", "")
        n = int(self.get_argument("n", "0"))
        for i in range(n):
            Work.step(i)
        if number:
            await traceassert(number != "77", label="hold_check", action="hold")
        if self.disconnected:
            return
        self.write(f"ok number={number} n={n}\n")


async def main() -> None:
    loop = tornado.ioloop.IOLoop.current()
    stopped = asyncio.Event()
    shell = otrace.OShell(
        globals_dict=globals(),
        allow_unsafe=True,
        new_thread=True,
        listen=os.environ.get("APP_LISTEN") or True,
        eventloop_callback=loop.add_callback,
    )
    shell.runtime.params.set("trace_active", True)  # traceassert holds 77
    otrace.tornado.attach(shell, loop, on_stop=stopped.set)
    sock, port = tornado.testing.bind_unused_port()
    server = HTTPServer(tornado.web.Application([(r"/", Handler)]))
    server.add_sockets([sock])
    path = shell.start_service()  # before loop(): the banner comes after these lines
    print(f"PORT {port}", flush=True)
    print(f"SOCKET {path}", flush=True)
    shell.loop()
    try:
        await stopped.wait()
    finally:
        shell.shutdown()
        server.stop()
    print("Server stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
