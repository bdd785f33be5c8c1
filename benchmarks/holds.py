"""Requests/s of a Tornado server: without otrace, with otrace and an idle shell, and with
1,000 requests held -- measured side by side in one run, printed as ratios (not asserted).

    PYTHONPATH=. python benchmarks/holds.py [--seconds 2] [--rounds 3] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import io
import os
import socket
import threading
import time

import tornado.httpserver
import tornado.ioloop
import tornado.testing
import tornado.web

import otrace
import otrace.tornado as otornado
from otrace import holds
from otrace.params import PARAMS
from otrace.tracing import traceassert


class Plain(tornado.web.RequestHandler):
    async def get(self) -> None:
        number = self.get_argument("number", "1")
        self.write(f"{1.0 / float(number):.6g}\n")


class Traced(otornado.HoldAwareMixin, tornado.web.RequestHandler):
    async def get(self) -> None:
        number = self.get_argument("number", "1")
        await traceassert(number != "77", label="hold_check", action="hold")
        self.write(f"{1.0 / float(number):.6g}\n")


def serve() -> tuple[int, tornado.ioloop.IOLoop]:
    ready = threading.Event()
    box: dict = {}

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        loop = tornado.ioloop.IOLoop.current()
        sock, port = tornado.testing.bind_unused_port()
        server = tornado.httpserver.HTTPServer(
            tornado.web.Application([(r"/plain", Plain), (r"/traced", Traced)])
        )
        server.add_sockets([sock])
        box.update(port=port, loop=loop)
        loop.add_callback(ready.set)
        loop.start()

    threading.Thread(target=run, daemon=True).start()
    ready.wait()
    return box["port"], box["loop"]


def measure(port: int, path: str, seconds: float, clients: int) -> float:
    counts = [0] * clients
    end = time.monotonic() + seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < end:
            conn.request("GET", path)
            conn.getresponse().read()
            counts[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--held", type=int, default=1000)
    opts = parser.parse_args()
    port, loop = serve()
    otornado.attach(loop=loop)
    read_fd, write_fd = os.pipe()  # the idle shell waits on a pipe that never speaks
    shell = otrace.OShell(
        {"__name__": "bench"},
        allow_unsafe=True,
        new_thread=True,
        _stdin=os.fdopen(read_fd),
        _stdout=io.StringIO(),
        _stderr=io.StringIO(),
    )
    shell.loop()
    PARAMS.trace_active = True
    results: dict[str, list[float]] = {"plain": [], "idle": [], "held": []}
    socks: list[socket.socket] = []
    for _ in range(opts.rounds):
        results["plain"].append(measure(port, "/plain?number=4", opts.seconds, opts.clients))
        results["idle"].append(measure(port, "/traced?number=4", opts.seconds, opts.clients))
        while len(socks) < opts.held:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /traced?number=77 HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        while len(holds.pending()) < opts.held:
            time.sleep(0.05)
        results["held"].append(measure(port, "/traced?number=4", opts.seconds, opts.clients))
    print(f"held requests during 'held': {len(holds.pending())}")
    shell.shutdown()
    for s in socks:
        s.close()
    os.close(write_fd)
    best = {k: max(v) for k, v in results.items()}
    print(f"{'case':<28}{f'req/s (best of {opts.rounds})':>20}{'ratio to plain':>18}")
    for key, label in (
        ("plain", "without otrace"),
        ("idle", "otrace, shell idle"),
        ("held", f"otrace, {opts.held} held"),
    ):
        print(f"{label:<28}{best[key]:>20.0f}{best[key] / best['plain']:>18.3f}")


if __name__ == "__main__":
    main()
