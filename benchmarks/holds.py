"""Figure 5: thousands of held requests -- the other clients' rate, memory, resume time.

    python benchmarks/holds.py [--quick] [--held N] [--seconds S] [--rounds N]

Three servers (``benchmarks/server.py``), each in its own process, one at a time:

* ``holds``: the handler awaits ``traceassert(number != "77", action="hold")``; the held
  requests come from ``_holders.py`` (asyncio, its own process: ``--held`` connections,
  default 10,000) while ``wrk -t1 -c8`` measures the other clients' requests per second,
  rounds alternating none held / all held;
* ``park``: otrace attached (request tracking on) but the handler awaits a plain future of
  its own -- a request waiting without otrace's hold;
* ``parkplain``: the same without otrace -- Tornado's own cost of a waiting request.

Memory per held request is the server's RSS delta (after ``gc.collect()``) from none to all
held, in the first round of a fresh process (later rounds reuse freed memory); otrace's
part is ``holds`` minus ``parkplain`` (hold and request tracking), split into the hold's
part (``holds`` minus ``park``) and tracking's.  A fourth, short run of ``holds`` under
``tracemalloc`` lists where the Python allocations of the held requests go, by file.
Resume (``--resume-rounds``, default 3): ``holds`` and ``parkplain`` side by side, two
servers up at once and rounds alternating between them, each: hold ``--held`` requests,
then from the client's ``/ctl?cmd=release`` until every held client has its answer.
Tornado alone (``parkplain``: the same handlers awaiting plain futures, resolved in one
loop) answering 10,000 requests at once is the floor no debugger can go under; otrace's
share is ``holds`` minus ``parkplain``.  Inside the server: the time ``release_all`` took,
the first and the last of the released handlers' ``on_finish`` (the response handed to the
socket -- the last one against the client's last answer shows whether the client keeps
up), and the garbage collections during the resume.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time

from _common import ROOT, machine, result, table
from _load import ENV, Server, wrk, wrk_cpu


class Holders:
    """The ``_holders.py`` client process: opens held requests, releases them, times it."""

    def __init__(self, port: int, count: int) -> None:
        self.count = count
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "_holders.py"), str(port), str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )

    def open(self) -> float:
        """Open the held requests; seconds it took."""
        self.proc.stdin.write("open\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "OPEN" or int(line[1]) != self.count:
            raise RuntimeError(f"holders did not open {self.count}: {line}")
        return float(line[2])

    def release(self) -> tuple[float, float]:
        """(seconds until every held client had its answer, seconds release_all took)."""
        self.proc.stdin.write("release\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ANSWERED" or line[2] != "0":
            raise RuntimeError(f"held requests not all answered: {line}")
        return float(line[1]), float(line[4])

    def stop(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_pending(server: Server, count: int, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while int(server.ctl("pending")) < count:
        if time.monotonic() > end:
            raise RuntimeError(f"{server.mode}: fewer than {count} requests waiting")
        time.sleep(0.05)


def run_mode(
    mode: str, held: int, rounds: int, seconds: float, load: bool, *extra: str
) -> dict[str, list[float]]:
    """Rounds of: (wrk with none held), hold ``held``, (wrk), release; the figures per round."""
    out: dict[str, list[float]] = {
        "free": [],
        "busy": [],
        "mem": [],
        "resume": [],
        "server": [],
        "resolved": [],
        "handlers": [],
        "free_cpu": [],
        "busy_cpu": [],
    }

    def measure(key: str) -> None:
        rps, cpu = wrk_cpu(server, seconds)
        out[key].append(rps)
        out[key + "_cpu"].append(cpu)

    server = Server(mode, 10, *extra)
    holders = None
    try:
        if load:
            wrk(server.url, 1)  # warm up
        holders = Holders(server.port, held)
        for r in range(rounds):
            if load and r % 2:
                measure("free")
            before = int(server.ctl("rss"))
            holders.open()
            wait_pending(server, held)
            if r == 0:
                out["mem"].append((int(server.ctl("rss")) - before) / held)
            if load:
                measure("busy")
            answered, inside = holders.release()
            out["resume"].append(answered)
            out["server"].append(inside)
            resolved, handlers, count = server.ctl("resumed").split()[:3]
            if int(count) != held:
                raise RuntimeError(f"{mode}: {count} of {held} handlers ran again")
            out["resolved"].append(float(resolved))
            out["handlers"].append(float(handlers))
            if load and not r % 2:
                measure("free")
    finally:
        if holders is not None:
            holders.stop()
        server.stop()
    return out


RESUME_KEYS = ("answered", "release", "last_finish", "first_finish", "gc", "full")


def resume_rounds(held: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    """``holds`` and ``parkplain`` resumed in alternating rounds (no wrk); figures per mode."""
    modes = ("parkplain", "holds")
    servers: dict[str, Server] = {}
    clients: dict[str, Holders] = {}
    out = {m: {k: [] for k in RESUME_KEYS} for m in modes}
    try:
        for m in modes:
            servers[m] = Server(m, 10)
            clients[m] = Holders(servers[m].port, held)
        for r in range(rounds):
            for m in modes if r % 2 == 0 else modes[::-1]:
                clients[m].open()
                wait_pending(servers[m], held)
                answered, inside = clients[m].release()
                f = servers[m].ctl("resumed").split()
                if int(f[2]) != held or int(f[5]) != held:
                    raise RuntimeError(f"{m}: {f[2]} handlers ran again, {f[5]} finished")
                got = (answered, inside, float(f[3]), float(f[4]), float(f[6]), float(f[7]))
                for k, v in zip(RESUME_KEYS, got, strict=True):
                    out[m][k].append(v)
    finally:
        for c in clients.values():
            c.stop()
        for srv in servers.values():
            srv.stop()
    return out


def breakdown(held: int) -> list[tuple[str, str, str]]:
    """Python allocations of ``held`` held requests by file (tracemalloc, ``holds`` mode)."""
    server = Server("holds", 10, "--tracemalloc")
    holders = None
    try:
        server.ctl("tmsnap")
        holders = Holders(server.port, held)
        holders.open()
        wait_pending(server, held)
        lines = server.ctl("tmdiff").splitlines()
        holders.release()
    finally:
        if holders is not None:
            holders.stop()
        server.stop()
    rows = []
    for line in lines:
        size, count, filename = line.split(" ", 2)
        if int(size) < held * 64:  # under 64 bytes per request: not worth a row
            continue
        short = filename.replace(str(ROOT) + "/", "")
        short = short.split("site-packages/")[-1].split("lib/python3")[-1]
        rows.append((short, f"{int(size) / held:.0f}", f"{int(count) / held:.1f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--held", type=int, default=10_000)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--no-breakdown", action="store_true")
    parser.add_argument("--resume-rounds", type=int, default=3)
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("holds.py needs wrk (apt-get install -y wrk)")
    held = opts.held
    seconds = opts.seconds or (2 if opts.quick else 3)
    rounds = opts.rounds or (2 if opts.quick else 4)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < held + 512:
        sys.exit(f"holds.py: the hard fd limit ({hard}) is below {held + 512}; lower --held")
    print(machine())
    plain = run_mode("parkplain", held, rounds, seconds, True)
    park = run_mode("park", held, 1, seconds, False)
    holds = run_mode("holds", held, rounds, seconds, True)
    resumed = resume_rounds(held, opts.resume_rounds)
    rh = {k: statistics.median(v) for k, v in resumed["holds"].items()}
    rp = {k: statistics.median(v) for k, v in resumed["parkplain"].items()}
    share = rh["answered"] - rp["answered"]
    med = {k: statistics.median(v) for k, v in holds.items() if v}
    base = {k: statistics.median(v) for k, v in plain.items() if v}
    ratio = med["busy"] / med["free"]
    cpu_ratio = med["free_cpu"] / med["busy_cpu"]  # CPU per request: none held / held
    tornado_ratio = base["busy"] / base["free"]
    total = holds["mem"][0] - plain["mem"][0]

    def kib(x: float) -> str:
        return f"{x / 1024:.1f} KiB"

    def ms(x: float) -> str:
        return f"{x * 1e3:.0f} ms"

    table(
        f"5. Holds: {held:,} held requests (median of {rounds} rounds; req/s: interleaved "
        f"rounds of {seconds:g}s, wrk -t1 -c8)",
        [
            ("req/s of others, none held", f"{med['free']:.0f}", "", ""),
            (f"req/s of others, {held:,} held", f"{med['busy']:.0f}", f"{ratio:.3f}", ">= 0.95"),
            (
                "  server CPU per other request, none / held",
                f"{med['free_cpu']:.0f} / {med['busy_cpu']:.0f} us",
                f"{cpu_ratio:.3f}",
                "",
            ),
            (
                f"  Tornado alone, {held:,} parked: req/s none / parked",
                f"{base['free']:.0f} / {base['busy']:.0f}",
                f"{tornado_ratio:.3f}",
                "",
            ),
            ("RSS per waiting request, Tornado alone", kib(plain["mem"][0]), "", ""),
            ("  + request tracking", kib(park["mem"][0] - plain["mem"][0]), "", ""),
            ("  + the hold (context, future)", kib(holds["mem"][0] - park["mem"][0]), "", ""),
            ("otrace's part per held request", kib(total), "", "<= 8 KiB"),
            ("RSS per held request, all", kib(holds["mem"][0]), "", ""),
        ],
        ("figure", "value", "ratio", "target"),
    )

    def both(k: str) -> tuple[str, str]:
        return ms(rp[k]), ms(rh[k])

    table(
        f"5c. Resume {held:,} held requests at once (medians of {opts.resume_rounds} "
        "alternating rounds, the two servers up side by side)",
        [
            ("until every client had its answer (client side)", *both("answered"), "<= 500 ms"),
            ("  otrace's share: holds minus Tornado alone", "", ms(share), "<= 500 ms"),
            ("release (parkplain: set_result of each; holds: release_all)", *both("release"), ""),
            ("first response finished (server, on_finish)", *both("first_finish"), ""),
            ("last response finished (server, on_finish)", *both("last_finish"), ""),
            ("  of the resume, in garbage collection", *both("gc"), ""),
            ("  full collections during it", f"{rp['full']:.0f}", f"{rh['full']:.0f}", ""),
        ],
        ("figure", "Tornado alone", "holds", "target"),
    )
    result("5-holds-others-rps-ratio", ratio, ">=", 0.95, "ratio")
    result("5-holds-others-cpu-ratio", cpu_ratio, "--", "--", "ratio")
    result("5-holds-otrace-kib-per-hold", total / 1024, "<=", 8, "KiB")
    # end to end (what the target names), and the part of it otrace adds to what
    # Tornado alone takes to answer the same 10,000 waiting requests
    result("5-holds-resume-all-answered-ms", rh["answered"] * 1e3, "<=", 500, "ms")
    result("5-holds-resume-all-otrace-share-ms", share * 1e3, "<=", 500, "ms")
    result("5-holds-tornado-alone-answered-ms", rp["answered"] * 1e3, "--", "--", "ms")
    result("5-holds-release-all-ms", rh["release"] * 1e3, "--", "--", "ms")
    result("5-holds-resume-first-answer-ms", rh["first_finish"] * 1e3, "--", "--", "ms")
    if not opts.no_breakdown:
        table(
            f"5b. Where the Python allocations of {held:,} held requests go (tracemalloc, "
            "by file of the allocating line)",
            breakdown(held),
            ("file", "bytes/request", "blocks/request"),
        )


if __name__ == "__main__":
    main()
