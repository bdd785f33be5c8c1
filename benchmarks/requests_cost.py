"""Figure 8: what request tracking and the stall watchdog cost, measured in one process.

    python benchmarks/requests_cost.py [--quick]

Throughput figures (``web.py`` figure 7) move by several percent between runs on a busy
machine, more than the effect measured.  This script measures the same costs in a way load
disturbs less, side by side in one run:

* tracking: a hello-world handler's whole Tornado ``_execute`` path (handler made, request
  run, response written to an in-memory connection), rounds alternating tracking off/on;
  the extra microseconds per request, and the request rate ratio they imply for the
  per-request CPU time of a real server (``--request-us``; default: measured on
  ``server.py --mode plain`` under ``wrk`` when wrk is installed, else 4x the handler path);
* stall watchdog: CPU seconds the process uses per second while its loop idles, with
  ``stall_ms`` 100 and off -- the share of one core the heartbeat and the watchdog thread
  take away from serving -- and the watchdog's wake-ups per second (one per ``stall_ms/2``).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import time
import warnings

import tornado.httputil  # noqa: E402 - _common puts the repository first on sys.path
import tornado.web  # noqa: E402
from _common import emit, machine, result, table


class Hello(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world\n")


class _Connection:
    """Just enough of an HTTP connection for a handler to write its response to nothing."""

    def set_close_callback(self, callback: object) -> None:
        pass

    def _done(self) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def write_headers(self, start_line: object, headers: object, chunk: object = None):
        return self._done()

    def write(self, chunk: object):
        return self._done()

    def finish(self) -> None:
        pass


async def _requests(app: tornado.web.Application, n: int) -> float:
    """CPU seconds (of this thread: time the machine gave to others is not counted) per
    request, for ``n`` requests one at a time, each in its own task."""
    start_line = tornado.httputil.RequestStartLine("GET", "/", "HTTP/1.1")

    async def one() -> None:
        req = tornado.httputil.HTTPServerRequest(
            start_line=start_line,
            headers=tornado.httputil.HTTPHeaders({"Host": "bench"}),
            connection=_Connection(),
        )
        await Hello(app, req)._execute([])

    t0 = time.thread_time()
    for _ in range(n):
        await asyncio.ensure_future(one())
    return (time.thread_time() - t0) / n


async def tracking(rounds: int, n: int) -> dict[str, list[float]]:
    from otrace.runtime import default
    from otrace.tornado import requests as tracked

    app = tornado.web.Application([(r"/", Hello)])
    seen: dict[str, list[float]] = {"off": [], "on": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tornado.access logs nothing here
        await _requests(app, n)  # warm up
        for r in range(rounds):
            for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
                if mode == "on":
                    tracked.install(default())
                seen[mode].append(await _requests(app, n))
                tracked.uninstall()
    return seen


def watchdog_cpu(seconds: float, rounds: int) -> tuple[dict[str, list[float]], float]:
    from otrace.runtime import default
    from otrace.tornado import stall

    rt = default()

    seen: dict[str, list[float]] = {"off": [], "on": []}
    wakeups = 0.0

    async def idle(mode: str) -> float:
        loop = asyncio.get_running_loop()
        rt.params.set("stall_ms", 100 if mode == "on" else 0)
        stall.configure(rt, loop)
        dog = stall.current(rt)
        c0, t0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu = (time.process_time() - c0) / (time.monotonic() - t0)
        if dog is not None:
            nonlocal wakeups
            wakeups = dog.wakeups / (time.monotonic() - t0)
        stall.configure(rt, None)
        return cpu

    for r in range(rounds):
        for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
            seen[mode].append(asyncio.run(idle(mode)))
    rt.params.set("stall_ms", 0)
    return seen, wakeups


def real_request_us() -> float:
    """Server CPU microseconds per request of the plain hello-world server under wrk (the
    fastest of 3 runs), or 0 without wrk."""
    if not shutil.which("wrk"):
        return 0.0
    from web import Server, wrk_cpu

    server = Server("plain")
    try:
        wrk_cpu(server, 1)  # warm up
        return min(wrk_cpu(server, 2)[1] for _ in range(3))
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--request-us", type=float, default=0.0)
    opts = parser.parse_args()
    # many short rounds: the fastest of each side is the one a busy machine disturbed least
    rounds = 40 if opts.quick else 120
    n = 300
    print(machine())
    seen = asyncio.run(tracking(rounds, n))
    off, on = min(seen["off"]), min(seen["on"])
    extra_us = (on - off) * 1e6
    # a real request also parses HTTP and talks to a socket: what it costs in all decides
    # what share the extra microseconds are
    request_us = opts.request_us or real_request_us() or off * 1e6 * 4
    ratio = request_us / (request_us + max(extra_us, 0.0))
    table(
        f"8a. Request tracking, in-process (fastest of {rounds} interleaved rounds of {n} requests)",
        [
            ("handler path, tracking off", f"{off * 1e6:.1f} us", ""),
            ("handler path, tracking on", f"{on * 1e6:.1f} us", f"{off / on:.3f}"),
            ("extra per request", f"{extra_us:.2f} us", ""),
            (f"implied req/s ratio at {request_us:.0f} us/request", "", f"{ratio:.3f}"),
        ],
        ("figure", "value", "ratio"),
    )
    emit("requests_inprocess", extra_us=extra_us, implied_ratio=ratio, target=0.98)
    result("8a-tracking-implied-rps-ratio", ratio, ">=", 0.98, "ratio")
    cpu, wakeups = watchdog_cpu(1.0 if opts.quick else 3.0, 3 if opts.quick else 5)
    c_off, c_on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
    share = max(c_on - c_off, 0.0)
    table(
        "8b. Stall watchdog on an idle loop (median of interleaved rounds)",
        [
            ("CPU share of one core, stall_ms 0", f"{c_off * 100:.3f} %", ""),
            ("CPU share of one core, stall_ms 100", f"{c_on * 100:.3f} %", ""),
            ("implied req/s ratio (1 - extra share)", "", f"{1 - share:.4f}"),
            ("watchdog wake-ups per second", f"{wakeups:.1f}", "target 20"),
        ],
        ("figure", "value", "ratio"),
    )
    result("8b-stall-implied-rps-ratio", 1 - share, ">=", 0.99, "ratio")
    emit("stall_inprocess", cpu_share=share, implied_ratio=1 - share, wakeups_per_s=wakeups)


if __name__ == "__main__":
    main()
