"""The load benchmarks' shared parts: a benchmark server process and ``wrk``.

``Server`` runs ``benchmarks/server.py`` in its own process and talks to it (``/ctl``
questions, shell rounds on stdin); ``wrk`` measures requests per second against it from
another process, so neither shares the server's GIL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request

from _common import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


class Server:
    def __init__(self, mode: str, recent: int = 10_000, *extra: str) -> None:
        self.mode = mode
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "server.py"),
                "--mode",
                mode,
                "--recent",
                str(recent),
                *extra,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"server {mode} did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}/"

    def ctl(self, cmd: str) -> str:
        with urllib.request.urlopen(f"{self.url}ctl?cmd={cmd}", timeout=60) as r:
            return r.read().decode()

    def shell_round(self, count: int) -> dict[str, list[float]]:
        """Times of ``count`` shell commands (shell mode), by command; errors raise."""
        self.proc.stdin.write(f"go {count}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        got = json.loads(line[len("SHELL ") :])
        if got["errors"]:
            raise RuntimeError(f"shell commands failed: {got['errors']}")
        return got["times"]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def wrk(url: str, seconds: float, connections: int = 8) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))


def wrk_cpu(server: Server, seconds: float) -> tuple[float, float]:
    """(req/s, server CPU microseconds per request) of one wrk run against ``server``."""
    out_cpu0 = float(server.ctl("cpu"))
    out = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{max(1, round(seconds))}s", server.url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = float(server.ctl("cpu")) - out_cpu0
    total = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
    return rps, cpu / max(total, 1) * 1e6
