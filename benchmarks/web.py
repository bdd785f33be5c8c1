"""Figures 1, 6 and 7: a Tornado server under ``wrk`` load, with and without otrace.

    python benchmarks/web.py [--quick] [--seconds S] [--rounds N]

Each server runs in its own process (``benchmarks/server.py``) and the load comes from
``wrk`` (one thread, 8 keep-alive connections, loopback only) in another, so neither shares
the server's GIL.  Rounds alternate baseline and candidate; medians are reported.

1. idle shell: req/s of ``idle`` (and ``assert``: handler awaits a true traceassert) vs
   ``plain``;
6. shell responsiveness: ``OShell.execute`` round trips under full load vs no load, p50/p99:
   ``ls`` and ``ls -t`` of a directory of /osh/recent holding ``--recent`` contexts (default
   100,000; ``ls_limit`` at its default, 1,000, so the listing reads all and shows 1,000),
   ``cd`` into it and into one of its contexts, ``ls`` there, ``cd``/``pr`` in globals;
7. request tracking and the stall watchdog: req/s with tracking (``idle``: what ``attach``
   does) vs no otrace (target >= 0.98) and vs ``attach(track_requests=False)``; with
   ``stall_ms`` 100 vs off (target >= 0.99), and the watchdog's wake-ups per second.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import threading
import time

from _common import emit, interleave, machine, result, table
from _load import Server, wrk, wrk_cpu


def figure1(seconds: float, rounds: int) -> None:
    servers = {m: Server(m) for m in ("plain", "idle", "assert")}
    try:
        for s in servers.values():
            wrk(s.url, 1)  # warm up
        med = interleave({m: (lambda s=s: wrk(s.url, seconds)) for m, s in servers.items()}, rounds)
    finally:
        for s in servers.values():
            s.stop()
    rows = [(m, f"{v:.0f}", f"{v / med['plain']:.3f}") for m, v in med.items()]
    table(
        f"1. Tornado hello world, req/s (median of {rounds} interleaved rounds of "
        f"{seconds:g}s, wrk -t1 -c8)",
        rows,
        ("server", "req/s", "ratio"),
    )
    emit(
        "idle", plain=med["plain"], idle=med["idle"], ratio=med["idle"] / med["plain"], target=0.99
    )
    emit("assert", ratio=med["assert"] / med["plain"])
    result("1-idle-rps-ratio", med["idle"] / med["plain"], ">=", 0.99, "ratio")
    result("1b-assert-rps-ratio", med["assert"] / med["plain"], "--", "--", "ratio")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def figure6(seconds: float, rounds: int, count: int, recent: int) -> None:
    server = Server("shell", recent)
    quiet: dict[str, list[float]] = {}
    loaded: dict[str, list[float]] = {}
    try:
        server.shell_round(20)  # warm up
        for r in range(rounds):
            for under_load in (False, True) if r % 2 == 0 else (True, False):
                target = loaded if under_load else quiet
                load, stop = None, threading.Event()
                if under_load:  # wrk runs until the round is over

                    def keep_loading(stop: threading.Event = stop) -> None:
                        while not stop.is_set():
                            wrk(server.url, seconds)

                    load = threading.Thread(target=keep_loading)
                    load.start()
                    time.sleep(0.5)
                for cmd, times in server.shell_round(count).items():
                    target.setdefault(cmd, []).extend(times)
                stop.set()
                if load is not None:
                    load.join()
    finally:
        server.stop()
    rows = []
    for cmd in quiet:
        q, lo = quiet[cmd], loaded.get(cmd, [])
        rows.append(
            (
                cmd,
                f"{pct(q, 0.5) * 1e3:.2f}",
                f"{pct(q, 0.99) * 1e3:.2f}",
                f"{pct(lo, 0.5) * 1e3:.2f}",
                f"{pct(lo, 0.99) * 1e3:.2f}",
                "<= 50" if cmd == "ls" else "",
            )
        )
    table(
        f"6. Shell round trip via OShell.execute, ms ({recent:,} contexts in one directory of "
        f"/osh/recent, ls_limit 1000; {sum(map(len, quiet.values()))} commands idle, "
        f"{sum(map(len, loaded.values()))} under wrk load)",
        rows,
        ("command", "p50 idle", "p99 idle", "p50 load", "p99 load", "target p99 load"),
    )
    for cmd, op, target in (("ls", "<=", 50), ("ls -t", "--", "--"), ("cd ctx", "--", "--")):
        figure = "6-shell-" + cmd.replace(" ", "") + "-p99-load-ms"
        result(figure, pct(loaded[cmd], 0.99) * 1e3, op, target, "ms")
    worst = max(pct(v, 0.99) for k, v in loaded.items() if k not in ("ls", "ls -t"))
    result("6-shell-cd-pr-p99-load-ms", worst * 1e3, "--", "--", "ms")


def figure7(seconds: float, rounds: int) -> None:
    """req/s, and the server's CPU time per request, which a busy machine disturbs less."""
    modes = ("plain", "untracked", "idle", "stall")
    servers = {m: Server(m) for m in modes}
    rps: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    try:
        for s in servers.values():
            wrk(s.url, 1)  # warm up
        first = servers["stall"].ctl("wakeups").split()
        for r in range(rounds):
            for m in modes if r % 2 == 0 else tuple(reversed(modes)):
                a, b = wrk_cpu(servers[m], seconds)
                rps[m].append(a)
                cpu[m].append(b)
        last = servers["stall"].ctl("wakeups").split()
    finally:
        for s in servers.values():
            s.stop()
    per_s = (int(last[0]) - int(first[0])) / (float(last[1]) - float(first[1]))
    med = {m: statistics.median(v) for m, v in rps.items()}
    us = {m: statistics.median(v) for m, v in cpu.items()}

    def row(name: str, a: str, b: str, target: str) -> tuple:
        return (
            name,
            f"{med[a]:.0f}",
            f"{med[a] / med[b]:.3f}",
            f"{us[a]:.1f}",
            f"{us[b] / us[a]:.3f}",
            target,
        )

    rows = [
        row("tracked / no otrace", "idle", "plain", ">= 0.98"),
        row("tracked / untracked", "idle", "untracked", ""),
        row("stall_ms 100 / off", "stall", "idle", ">= 0.99"),
        ("watchdog wake-ups per second", f"{per_s:.1f}", "", "", "", "20 (stall_ms/2)"),
    ]
    table(
        f"7. Request tracking and stall watchdog (median of {rounds} interleaved rounds of "
        f"{seconds:g}s; no otrace: {med['plain']:.0f} req/s, {us['plain']:.1f} CPU us/request)",
        rows,
        ("figure", "req/s", "ratio", "CPU us/req", "CPU ratio", "target"),
    )
    emit(
        "requests",
        tracked_ratio=med["idle"] / med["plain"],
        tracked_cpu_ratio=us["plain"] / us["idle"],
        target=0.98,
        tracking_only_cpu_ratio=us["untracked"] / us["idle"],
    )
    result("7-tracked-rps-ratio", med["idle"] / med["plain"], ">=", 0.98, "ratio")
    result("7-tracked-cpu-ratio", us["plain"] / us["idle"], "--", "--", "ratio")
    result("7-stall-rps-ratio", med["stall"] / med["idle"], ">=", 0.99, "ratio")
    result("7-stall-wakeups-per-s", per_s, "--", "--", "1/s")
    emit(
        "stall",
        ratio=med["stall"] / med["idle"],
        cpu_ratio=us["idle"] / us["stall"],
        target=0.99,
        wakeups_per_s=per_s,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--only", default="1,6,7")
    parser.add_argument("--recent", type=int, default=100_000, help="contexts for figure 6")
    opts = parser.parse_args()
    seconds = opts.seconds or (1 if opts.quick else 3)
    rounds = opts.rounds or (3 if opts.quick else 5)
    if not shutil.which("wrk"):
        sys.exit("web.py needs wrk (apt-get install -y wrk)")
    print(machine())
    only = opts.only.split(",")
    if "1" in only:
        figure1(seconds, rounds)
    if "6" in only:
        figure6(seconds, 1 if opts.quick else 3, 70 if opts.quick else 210, opts.recent)
    if "7" in only:
        figure7(seconds, rounds)


if __name__ == "__main__":
    main()
