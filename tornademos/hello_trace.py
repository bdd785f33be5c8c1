#!/usr/bin/env python3
"""hello_trace: the Getting Started program on Tornado 6, with otrace embedded.

A tiny server answers ``/?number=N`` with the reciprocal of N (``Receive.respond``) and
counts requests (``Request_stats``).  From the otrace shell, ``submit(N)`` makes a real
HTTP request to the running server and prints the answer, so you can trace ``respond``,
make it fail with ``submit(0)`` and browse what happened.

    python tornademos/hello_trace.py [--addr 127.0.0.1] [--port 8888]
"""

from __future__ import annotations

import argparse
import asyncio
import urllib.error
import urllib.request

import tornado.ioloop
import tornado.web

import otrace
import otrace.tornado
from otrace import holds

ADDRESS = ("127.0.0.1", 8888)


class Request_stats:  # noqa: N801 - the tutorial's name
    """Counts of requests and errors."""

    count = 0
    errors = 0
    last_number = ""


class Receive:
    """Computes the answer to one request."""

    @classmethod
    def respond(cls, number: str) -> str:
        value = float(number)
        return f"The reciprocal of {number} is {1.0 / value:.6g}"


class GetHandler(tornado.web.RequestHandler):
    """GET /?number=N"""

    def get(self) -> None:
        number = self.get_argument("number", "1")
        Request_stats.count += 1
        Request_stats.last_number = number
        try:
            answer = Receive.respond(number)
        except Exception as exc:
            Request_stats.errors += 1
            self.set_status(500)
            answer = f"Error: {type(exc).__name__}: {exc}"
        self.write(answer + "\n")


def submit(number: object) -> str:
    """Request /?number=<number> from the running server and return the answer (the shell
    prints it).

    Blocking: call it from the otrace shell (its own thread), never on the event loop.
    """
    if holds.running_loop() is not None:
        raise RuntimeError("submit() blocks: call it from the shell, not on the event loop")
    url = f"http://{ADDRESS[0]}:{ADDRESS[1]}/?number={number}"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.read().decode().rstrip()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read().decode().rstrip()}"


async def main(addr: str, port: int) -> None:
    global ADDRESS
    ADDRESS = (addr, port)
    loop = tornado.ioloop.IOLoop.current()
    stopped = asyncio.Event()
    shell = otrace.OShell(
        globals_dict=globals(),
        locals_dict=locals(),
        allow_unsafe=True,
        listen=True,  # otrace attach PID opens more consoles
        new_thread=True,
        eventloop_callback=loop.add_callback,
    )
    otrace.tornado.attach(shell, loop, on_stop=stopped.set)
    server = tornado.web.Application([(r"/", GetHandler)]).listen(port, address=addr)
    print(f"Listening on http://{addr}:{port}/", flush=True)
    shell.loop()
    try:
        await stopped.wait()
    finally:
        shell.shutdown()
        server.stop()
        await server.close_all_connections()
    print("Server stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--addr", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8888, help="port to listen on")
    options = parser.parse_args()
    try:
        asyncio.run(main(options.addr, options.port))
    except KeyboardInterrupt:
        pass
