#!/usr/bin/env python3
"""torna_trace: a Tornado 6 form that answers a number's reciprocal, with otrace embedded.

Entering 77 holds the request (when ``trace_active`` is on, as torna_trace.trc sets it):
the browser waits, every other request is still served, and the shell can browse the held
frame (``cd ~~``, ``ls``) and ``resume`` it.  ``shutdown`` stops the server (``quit`` only
detaches the console; ``otrace attach PID`` opens one again).

    python tornademos/torna_trace.py [--addr 127.0.0.1] [--port 8888]
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os

import tornado.ioloop
import tornado.web

import otrace
import otrace.tornado
from otrace.tracing import traceassert

FORM = """<!DOCTYPE html>
<html><head><title>Reciprocal</title></head><body>
<form action="/" method="get">
  Number: <input type="text" name="number" value="{number}" autofocus>
  <input type="submit" value="Reciprocal">
</form>
<p>{answer}</p>
</body></html>
"""


def reciprocal(number: str) -> str:
    try:
        return f"The reciprocal of {number} is {1.0 / float(number):.6g}"
    except (ValueError, ZeroDivisionError) as exc:
        return f"No reciprocal for {number!r}: {exc}"


class GetHandler(otrace.tornado.HoldAwareMixin, tornado.web.RequestHandler):
    """The form; 77 is held (``resume`` it from the shell)."""

    async def get(self) -> None:
        number = self.get_argument("number", "")
        if number:
            await traceassert(number != "77", label="hold_check", action="hold")
        if self.disconnected:
            return
        answer = reciprocal(number) if number else ""
        self.write(FORM.format(number=html.escape(number), answer=html.escape(answer)))


def make_app() -> tornado.web.Application:
    return tornado.web.Application([(r"/", GetHandler)])


async def main(addr: str, port: int) -> None:
    loop = tornado.ioloop.IOLoop.current()
    stopped = asyncio.Event()
    init_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torna_trace.trc")
    shell = otrace.OShell(
        globals_dict=globals(),
        locals_dict=locals(),
        init_file=init_file,
        allow_unsafe=True,
        listen=True,  # otrace attach PID opens more consoles
        new_thread=True,
        eventloop_callback=loop.add_callback,
    )
    otrace.tornado.attach(shell, loop, on_stop=stopped.set)
    server = make_app().listen(port, address=addr)
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
