"""A Tornado hello-world server for the load benchmarks, run in its own process.

    python benchmarks/server.py --mode {plain,idle,untracked,stall,assert,holds,shell,service}

* ``plain``  -- no otrace at all (the baseline);
* ``idle``   -- ``OShell(new_thread=True)`` reading a pipe nobody writes to, plus
  ``otrace.tornado.attach``; the handler is the same as ``plain``;
  request tracking (``/osh/requests``) is on, as ``attach`` makes it;
* ``untracked`` -- ``idle`` with ``attach(track_requests=False)``;
* ``stall``  -- ``idle`` with the stall watchdog on (``stall_ms`` 100);
* ``assert`` -- ``idle`` and the handler also awaits a true ``traceassert(..., action="hold")``
  (``trace_active`` on); ``?number=77`` makes it false, so the request is held;
* ``holds``  -- same as ``assert`` (the driver holds requests with ``number=77``);
* ``park``   -- ``idle``, and with ``number=77`` the handler awaits a plain asyncio future of
  the program's own (no otrace hold): what a waiting request costs Tornado and request tracking;
* ``parkplain`` -- ``park`` without otrace: what a waiting request costs Tornado alone;
* ``service`` -- the otrace service listening on ``--listen PATH`` and no terminal (stdin is
  /dev/null, as under systemd); consoles attach from outside;
* ``shell``  -- ``idle`` with ``max_recent`` high and ``--recent`` contexts (default 10,000) in
  /osh/recent/traces/Shop.sell; a thread runs shell commands through ``OShell.execute``
  when told to on stdin.

Prints ``PORT <n>`` when listening.  ``GET /ctl?cmd=...`` answers control questions:
``rss`` (resident memory in bytes), ``pending`` (held or parked requests), ``release``
(release every hold: ``<count> <seconds release_all took>``), ``resumed`` (seconds from
the last release until its queued callbacks had run and until the last held handler ran
again, and how many did; then seconds until the last and the first of their responses was
finished -- ``on_finish``, the response handed to the socket -- and how many were, and the
seconds spent in garbage collection since the release and how many full collections ran),
``gc`` (objects the collector tracks, collections per
generation), ``cpu`` (CPU seconds used by the process), ``wakeups`` (stall watchdog
wake-ups so far); with ``--tracemalloc``, ``tmsnap`` takes a snapshot and ``tmdiff`` lists
what was allocated since, by file.  Stdin commands (shell mode): ``go <count>`` -> one
``SHELL {json}`` line with round-trip times in seconds.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tornado.httpserver  # noqa: E402
import tornado.ioloop  # noqa: E402
import tornado.netutil  # noqa: E402
import tornado.web  # noqa: E402


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Hello(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world\n")


SNAP: list = []  # --tracemalloc: the snapshot tmdiff compares with
RESUMED: list = []  # when each released request's handler ran again (perf_counter)
FINISHED: list = []  # when each released request's response was finished (on_finish)
IN_GC = [0.0, 0.0, 0]  # garbage collection: start of the current one, seconds, full ones


def _gc_clock(phase: str, info: dict) -> None:
    if phase == "start":
        IN_GC[0] = time.perf_counter()
    else:
        IN_GC[1] += time.perf_counter() - IN_GC[0]
        IN_GC[2] += info["generation"] == 2


gc.callbacks.append(_gc_clock)
GC_AT_RELEASE = [0.0, 0]
PROFILE: list = []  # --profile: (path, cProfile.Profile) of the last resume
RELEASED = [0.0, 0.0]  # when the last release began; when the callbacks it queued had run
PARKED: list = []  # park modes: the futures waiting requests await


def make_app(mode: str) -> tornado.web.Application:
    handlers: list = [(r"/", Hello)]
    if mode in ("park", "parkplain"):

        class Parking(tornado.web.RequestHandler):
            waited = False

            async def get(self) -> None:
                number = self.get_argument("number", "1")
                if number == "77":
                    fut = tornado.ioloop.IOLoop.current().asyncio_loop.create_future()
                    PARKED.append(fut)
                    await fut
                    RESUMED.append(time.perf_counter())
                    self.waited = True
                self.write("Hello, world\n")

            def on_finish(self) -> None:
                if self.waited:  # the response is written (to the socket's buffer) by now
                    FINISHED.append(time.perf_counter())

        handlers = [(r"/", Parking)]
    if mode in ("assert", "holds"):
        import otrace.tornado as otornado
        from otrace.tracing import traceassert

        class Asserting(otornado.HoldAwareMixin, tornado.web.RequestHandler):
            waited = False

            async def get(self) -> None:
                number = self.get_argument("number", "1")
                await traceassert(number != "77", label="hold_check", action="hold")
                if number == "77":
                    RESUMED.append(time.perf_counter())
                    self.waited = True
                self.write("Hello, world\n")

            def on_finish(self) -> None:
                if self.waited:
                    FINISHED.append(time.perf_counter())

        handlers = [(r"/", Asserting)]

    class Ctl(tornado.web.RequestHandler):
        def get(self) -> None:
            cmd = self.get_argument("cmd")
            if cmd == "rss":
                gc.collect()
                self.write(str(rss()))
            elif cmd == "pending":
                if mode in ("park", "parkplain"):
                    self.write(str(len(PARKED)))
                    return
                from otrace.runtime import default

                self.write(str(len(default().holds)))
            elif cmd == "release":
                RESUMED.clear()
                FINISHED.clear()
                GC_AT_RELEASE[:] = IN_GC[1:]
                if PROFILE:
                    PROFILE[1].enable()
                t0 = RELEASED[0] = time.perf_counter()
                if mode in ("park", "parkplain"):
                    count = len(PARKED)
                    for fut in PARKED:
                        fut.set_result(None)
                    PARKED.clear()
                else:
                    from otrace import holds

                    count = holds.release_all("resumed")
                self.write(f"{count} {time.perf_counter() - t0}")
                # runs after the callbacks the release queued (and before the tasks they wake)
                tornado.ioloop.IOLoop.current().asyncio_loop.call_soon(
                    lambda: RELEASED.__setitem__(1, time.perf_counter())
                )
            elif cmd == "resumed":
                if PROFILE:
                    PROFILE[1].disable()
                    PROFILE[1].dump_stats(PROFILE[0])
                last = max(RESUMED, default=RELEASED[0])
                done = max(FINISHED, default=RELEASED[0])
                first = min(FINISHED, default=RELEASED[0])
                self.write(
                    f"{RELEASED[1] - RELEASED[0]} {last - RELEASED[0]} {len(RESUMED)} "
                    f"{done - RELEASED[0]} {first - RELEASED[0]} {len(FINISHED)} "
                    f"{IN_GC[1] - GC_AT_RELEASE[0]} {IN_GC[2] - GC_AT_RELEASE[1]}"
                )
            elif cmd == "tmsnap":
                import tracemalloc

                gc.collect()
                SNAP[:] = [tracemalloc.take_snapshot()]
                self.write("ok")
            elif cmd == "tmdiff":
                import tracemalloc

                gc.collect()
                stats = tracemalloc.take_snapshot().compare_to(SNAP[0], "filename")
                self.write(
                    "\n".join(
                        f"{s.size_diff} {s.count_diff} {s.traceback[0].filename}"
                        for s in stats[:25]
                    )
                )
            elif cmd == "gc":  # objects the collector tracks; collections per generation
                counts = " ".join(str(g["collections"]) for g in gc.get_stats())
                self.write(f"{len(gc.get_objects())} {counts}")
            elif cmd == "cpu":
                self.write(str(time.process_time()))
            elif cmd == "wakeups":
                from otrace.runtime import default
                from otrace.tornado import stall

                dog = stall.current(default())
                self.write(f"{dog.wakeups if dog else 0} {time.monotonic()}")

    return tornado.web.Application([*handlers, (r"/ctl", Ctl)])


def fill_recent(count: int) -> None:
    from otrace.contexts.record import TraceContext
    from otrace.runtime import default

    STORE, PARAMS = default().store, default().params

    PARAMS.set("max_recent", count + 10)  # ls_limit stays at its default (1,000 shown)
    for i in range(count):
        STORE.add(TraceContext("traces", "Shop.sell", f"call{i}", {"qty": i}, {}))


def shell_driver(shell, count: int) -> None:
    """Run the figure-6 commands in turn on ``go N`` (N commands); their times as JSON."""
    last = f"/osh/recent/traces/Shop.sell/tr-call{count - 1}"
    commands = [
        ("cd", "cd /osh/recent/traces/Shop.sell"),
        ("ls", "ls"),
        ("ls -t", "ls -t"),
        ("cd ctx", f"cd {last}"),
        ("ls ctx", "ls"),
        ("cd globals", "cd /osh/globals"),
        ("pr", "pr PORT"),
    ]
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] != "go":
            continue
        times: dict[str, list[float]] = {label: [] for label, _ in commands}
        errors: list[str] = []
        for i in range(int(parts[1])):
            label, cmd = commands[i % len(commands)]
            t0 = time.perf_counter()
            out, err = shell.execute(cmd)
            times[label].append(time.perf_counter() - t0)
            if err and "ls: showing" not in err:
                errors.append(f"{cmd}: {err.strip()}")
        print("SHELL " + json.dumps({"times": times, "errors": errors[:5]}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--mode",
        choices=(
            "plain",
            "idle",
            "untracked",
            "stall",
            "assert",
            "holds",
            "park",
            "parkplain",
            "shell",
            "service",
        ),
        default="plain",
    )
    parser.add_argument("--listen", help="socket path (service mode)")
    parser.add_argument("--recent", type=int, default=10_000)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--profile", help="cProfile each resume (release to resumed) into PATH")
    opts = parser.parse_args()
    if opts.profile:
        import cProfile

        PROFILE[:] = [opts.profile, cProfile.Profile()]
    if opts.tracemalloc:
        import tracemalloc

        tracemalloc.start()
    # thousands of held connections (figure 5)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sock = tornado.netutil.bind_sockets(0, "127.0.0.1", backlog=1024)
    port = sock[0].getsockname()[1]
    loop = tornado.ioloop.IOLoop.current()
    server = tornado.httpserver.HTTPServer(make_app(opts.mode))
    server.add_sockets(sock)
    if opts.mode not in ("plain", "parkplain"):
        import otrace
        import otrace.tornado as otornado
        from otrace.runtime import default

        PARAMS = default().params

        if opts.mode == "service":
            stdin = open(os.devnull)  # noqa: SIM115 - no terminal: consoles attach
        else:
            read_fd, _write_fd = os.pipe()  # the idle shell waits on a pipe nobody writes to
            stdin = os.fdopen(read_fd)
        shell = otrace.OShell(
            {"__name__": "bench", "PORT": port},
            new_thread=True,
            listen=opts.listen or False,
            _stdin=stdin,
            _stdout=io.StringIO(),
            _stderr=io.StringIO(),
        )
        otornado.attach(shell, loop, stop_loop=False, track_requests=opts.mode != "untracked")
        shell.loop()
        if opts.mode in ("assert", "holds"):
            PARAMS.set("trace_active", True)
        if opts.mode == "stall":
            PARAMS.set("stall_ms", 100)
        if opts.mode == "shell":
            fill_recent(opts.recent)
            threading.Thread(target=shell_driver, args=(shell, opts.recent), daemon=True).start()
    print(f"PORT {port}", flush=True)
    loop.start()


if __name__ == "__main__":
    main()
