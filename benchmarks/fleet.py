"""Fleet console figures: ``ls /osh/recent`` over 8 workers, a broadcast ``trace``.

    python benchmarks/fleet.py [--quick]

Starts ``tests/fleet/forked_app.py`` with ``fork_processes(8)`` (stdin from /dev/null,
sockets in a private directory), attaches a :class:`~otrace.fleet.session.FleetSession` to
all its processes, fills ``/osh/recent`` of every worker with N contexts (``trace -c call``
and N calls run in each worker), then times:

* the fleet's ``ls /osh/recent`` (every worker's contexts, merged) beside the same listing
  from one worker alone (targets: < 200 ms p99 for 8 x 10,000);
* a broadcast ``trace`` + ``untrace`` pair reaching every worker, beside the same pair sent
  to one worker (target: < 100 ms per broadcast).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from _common import ROOT, emit, machine, table

from otrace.fleet.session import FleetSession


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    workers, contexts, rounds = (8, 2_000, 20) if opts.quick else (8, 10_000, 50)
    run = tempfile.mkdtemp(prefix="otrace-fleet-bench-")
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_RUNTIME_DIR=run, APP_WORKERS=str(workers))
    app = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fleet" / "forked_app.py")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=run,
        start_new_session=True,
    )
    try:
        assert app.stdout is not None
        seen, port = 0, 0
        deadline = time.monotonic() + 60
        while seen < workers and time.monotonic() < deadline:
            line = app.stdout.readline()
            seen += bool(re.match(r"^WORKER ", line))
            port = int(line.split()[1]) if line.startswith("PORT ") else port
        os.environ["XDG_RUNTIME_DIR"] = run
        fleet = FleetSession("forked_app")
        fleet.start()
        n = len(fleet.members)
        for line in (
            "set safe_mode False",
            f"set max_recent {contexts}",
            f"set ls_limit {contexts + 10}",
            "trace -c call Work.step",
        ):
            fleet.execute(line)
        # the calls come from requests (otrace's own threads are not traced): until every
        # worker has made ``contexts`` of them
        made: dict[str, int] = {}
        while len(made) < workers or min(made.values()) < contexts:
            url = f"http://127.0.0.1:{port}/?n=500"
            with urllib.request.urlopen(url, timeout=60) as resp:
                pid = re.search(r"pid=(\d+)", resp.read().decode()).group(1)  # type: ignore[union-attr]
            made[pid] = made.get(pid, 0) + 500
        one = fleet.live()[-1]
        pattern = "ls /osh/recent/*/*/*/*"
        fleet_ls, one_ls, fleet_tr, one_tr = [], [], [], []
        listed = 0
        for _ in range(rounds):
            t = time.perf_counter()
            listed = len(fleet.execute("ls /osh/recent").chunks)  # one per context
            fleet_ls.append(time.perf_counter() - t)
            t = time.perf_counter()
            one.execute(pattern)
            one_ls.append(time.perf_counter() - t)
            t = time.perf_counter()
            fleet.execute("trace Work.other")
            fleet.execute("untrace Work.other")
            fleet_tr.append((time.perf_counter() - t) / 2)
            t = time.perf_counter()
            one.execute("trace Work.other")
            one.execute("untrace Work.other")
            one_tr.append((time.perf_counter() - t) / 2)
        fleet.close()
    finally:
        os.killpg(app.pid, signal.SIGKILL)
        app.wait(10)
    print(machine())
    print(f"{n} processes ({workers} workers and their parent), {contexts} contexts each")
    ms = 1000.0
    rows = [
        ("fleet ls /osh/recent", f"{percentile(fleet_ls, 0.5) * ms:.1f}",
         f"{percentile(fleet_ls, 0.99) * ms:.1f}", f"{listed} contexts"),
        ("one worker's ls", f"{percentile(one_ls, 0.5) * ms:.1f}",
         f"{percentile(one_ls, 0.99) * ms:.1f}", ""),
        ("broadcast trace", f"{percentile(fleet_tr, 0.5) * ms:.1f}",
         f"{percentile(fleet_tr, 0.99) * ms:.1f}", ""),
        ("one worker's trace", f"{percentile(one_tr, 0.5) * ms:.1f}",
         f"{percentile(one_tr, 0.99) * ms:.1f}", ""),
    ]  # fmt: skip
    table("fleet console", rows, ("what", "p50 ms", "p99 ms", ""))
    emit(
        "fleet",
        workers=n,
        contexts=contexts,
        ls_p99_ms=round(percentile(fleet_ls, 0.99) * ms, 1),
        ls_ratio_to_one=round(percentile(fleet_ls, 0.5) / percentile(one_ls, 0.5), 2),
        trace_p99_ms=round(percentile(fleet_tr, 0.99) * ms, 1),
    )


if __name__ == "__main__":
    main()
