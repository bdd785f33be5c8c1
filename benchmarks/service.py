"""What the otrace service costs the program: requests/s with consoles attached, and the
traced thread's cost of an announcement when a console has stopped reading.

    python benchmarks/service.py [--quick]

A. Tornado hello world under ``wrk``: no otrace vs the service listening with 0, 1 and 10
   idle consoles attached (each a real connection that said hello and waits), interleaved
   rounds in one run.  Target: every ratio >= 0.99.
B. ``runtime.announce()`` on the calling (traced) thread, microseconds per announcement:
   no console (the line goes to stderr, here /dev/null) vs one ``otrace attach`` client
   stopped with SIGSTOP (its queue is full and drops), interleaved in one process (the
   service's subscription is switched off for the "no console" rounds).  Target: no worse
   than no console.

Needs ``wrk`` for A (``apt-get install -y wrk``); B runs without it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, emit, interleave, machine, result, slug, table

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


class Served:
    """benchmarks/server.py in a mode, with ``consoles`` idle consoles attached."""

    def __init__(self, mode: str, directory: str, consoles: int = 0) -> None:
        self.sock_path = os.path.join(directory, f"{mode}-{consoles}.sock")
        args = [sys.executable, str(ROOT / "benchmarks" / "server.py"), "--mode", mode]
        if mode == "service":
            args += ["--listen", self.sock_path]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, env=ENV
        )
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"server {mode} did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/"
        self.consoles = [self._attach() for _ in range(consoles)]

    def _attach(self):
        from otrace.console.remote import RemoteSession

        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.sock_path)
        remote = RemoteSession(s, client="benchmark")
        remote.hello()
        return remote

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        for c in self.consoles:
            c.close()
        self.proc.kill()
        self.proc.wait()


def wrk(url: str, seconds: float) -> float:
    import re

    out = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{max(1, round(seconds))}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))


def figure_a(seconds: float, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="otrace-bench-") as directory:
        servers = {
            "no otrace": Served("plain", directory),
            "service, 0 consoles": Served("service", directory, 0),
            "service, 1 console": Served("service", directory, 1),
            "service, 10 consoles": Served("service", directory, 10),
        }
        try:
            for s in servers.values():
                wrk(s.url, 1)  # warm up
            med = interleave(
                {n: (lambda s=s: wrk(s.url, seconds)) for n, s in servers.items()}, rounds
            )
            before = {n: s.cpu_seconds() for n, s in servers.items()}
            time.sleep(3)  # idle: what do the consoles cost when nobody types?
            idle = {n: s.cpu_seconds() - before[n] for n, s in servers.items()}
        finally:
            for s in servers.values():
                s.stop()
    base = med["no otrace"]
    rows = [(n, f"{v:.0f}", f"{v / base:.3f}", f"{idle[n]:.2f}") for n, v in med.items()]
    table(
        f"A. Tornado hello world, req/s (median of {rounds} interleaved rounds of {seconds:g}s, "
        "wrk -t1 -c8); CPU seconds each server used in 3 idle seconds",
        rows,
        ("server", "req/s", "ratio", "idle cpu s"),
    )
    for n, v in med.items():
        if n != "no otrace":
            emit(f"service:{n}", ratio=v / base, target=0.99)
            result(
                f"service-{slug(n).removeprefix('service-')}-rps-ratio",
                v / base,
                ">=",
                0.99,
                "ratio",
            )


def figure_b(count: int, rounds: int) -> None:
    import otrace
    from otrace.events import Announcement
    from otrace.runtime import default

    rt = default()
    with tempfile.TemporaryDirectory(prefix="otrace-bench-") as directory:
        path = os.path.join(directory, "bench.sock")
        shell = otrace.OShell(
            {"__name__": "bench"}, no_input=True, new_thread=True, banner="", listen=path
        )
        shell.loop()
        devnull = os.open(os.devnull, os.O_WRONLY)
        saved_err = os.dup(2)
        client = None
        try:
            os.dup2(devnull, 2)  # "no console": announcements go to stderr

            def per_call() -> float:
                t0 = time.perf_counter()
                for i in range(count):
                    rt.announce(f"Shop.sell:tr-call:{i} qty={i}")
                return (time.perf_counter() - t0) / count * 1e6

            client = subprocess.Popen(
                [sys.executable, "-m", "otrace", "attach", path],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=ENV,
                cwd=str(ROOT),
            )
            deadline = time.monotonic() + 15
            while shell.service.info()["consoles"] < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(client.pid, signal.SIGSTOP)
            per_call()  # fill its socket buffer and queue: from now on it drops
            bus, listener = rt.events, shell.service._on_announcement

            def no_console() -> float:
                # the same process with the service's subscription off: the stderr path
                bus.unsubscribe(Announcement, listener)
                try:
                    return per_call()
                finally:
                    bus.subscribe(Announcement, listener)

            med = interleave({"alone": no_console, "stopped": per_call}, rounds)
            dropped = sum(
                c.queue.dropped_total + c.queue.pending_drops() for c in shell.service.clients()
            )
        finally:
            os.dup2(saved_err, 2)
            os.close(devnull)
            os.close(saved_err)
            if client is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(client.pid, signal.SIGCONT)
                client.kill()
                client.communicate()
            shell.shutdown()
    a, b = med["alone"], med["stopped"]
    table(
        f"B. One announcement on the traced thread, us (median of {rounds} runs of {count})",
        [
            ("no console (stderr)", f"{a:.2f}", "1.000"),
            ("one console, SIGSTOPped", f"{b:.2f}", f"{b / a:.3f}"),
        ],
        ("case", "us", "ratio"),
    )
    print(f"   (the stopped console's queue dropped {dropped} announcements)")
    emit("service:announce-stopped-client", ratio=b / a, target=1.0)
    result("service-announce-stopped-console-ratio", b / a, "--", "--", "ratio")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    print(machine())
    if shutil.which("wrk"):
        figure_a(1 if opts.quick else 3, 3 if opts.quick else 5)
    else:
        print("\n(wrk not found: figure A skipped; apt-get install -y wrk)")
    figure_b(20_000 if opts.quick else 100_000, 3 if opts.quick else 5)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
