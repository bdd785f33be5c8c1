"""Fleet figures (issue 17): ``ls /osh/recent`` over 8 workers x 10,000 contexts, a broadcast
``trace`` reaching 8 workers, contexts/s written to PostgreSQL beside SQLite.

    python benchmarks/fleet.py [--quick] [--no-store]

Starts ``tests/fleet/forked_app.py`` with ``fork_processes(8)`` (stdin from /dev/null,
sockets in a private directory), attaches a :class:`~otrace.fleet.session.FleetSession` to
all its processes (the 8 workers and their parent, which serves no requests), fills
``/osh/recent`` of every worker with 10,000 contexts (``trace -c call`` and requests making
the calls), then times, side by side in one run:

* the fleet's ``ls /osh/recent`` with the default ``ls_limit`` (the newest 1,000 of the
  80,000 contexts: each worker sends its newest 1,000 as data, the ``list`` message) --
  target < 200 ms p99;
* the same listing of all 80,000 (``ls_limit`` raised), over the ``list`` message and over
  the text path that workers without it get (every worker's ``ls`` text, parsed);
* a broadcast ``trace`` reaching every worker beside the same ``trace`` sent to one worker --
  target < 100 ms p99;
* contexts/s written to PostgreSQL (a throwaway cluster, as ``store_backends.py`` starts)
  beside SQLite, with the writers of ``store_backends.py`` (skipped without Debian's
  postgresql server, or with ``--no-store``).

Each figure with a target is printed as ``RESULT <figure-id> <value> <op> <target> <unit>``
(``_common.result``; ``run_all.py`` collects them).
``--quick`` keeps 8 x 10,000 but takes fewer rounds (so its p99 is nearly the maximum).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from _common import ROOT, machine, result, table

from otrace.fleet.session import FleetSession

MS = 1000.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def start_app(workers: int, run: str) -> tuple[subprocess.Popen, int]:
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
    assert app.stdout is not None
    seen, port = 0, 0
    deadline = time.monotonic() + 60
    while seen < workers and time.monotonic() < deadline:
        line = app.stdout.readline()
        seen += bool(re.match(r"^WORKER ", line))
        port = int(line.split()[1]) if line.startswith("PORT ") else port
    if seen < workers:
        raise SystemExit(f"only {seen} of {workers} workers started")
    return app, port


def fill(port: int, workers: int, contexts: int) -> None:
    """Requests (each making 500 traced calls) until every worker has made ``contexts``
    calls; the calls come from requests since otrace's own threads are not traced."""
    made: dict[str, int] = {}
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                if len(made) >= workers and min(made.values()) >= contexts:
                    return
            url = f"http://127.0.0.1:{port}/?n=500"
            with urllib.request.urlopen(url, timeout=120) as resp:
                pid = re.search(r"pid=(\d+)", resp.read().decode()).group(1)  # type: ignore[union-attr]
            with lock:
                made[pid] = made.get(pid, 0) + 500

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)


def fleet_figures(workers: int, contexts: int, rounds: int) -> None:
    run = tempfile.mkdtemp(prefix="otrace-fleet-bench-")
    app, port = start_app(workers, run)
    try:
        os.environ["XDG_RUNTIME_DIR"] = run
        fleet = FleetSession("forked_app")
        fleet.start()
        n = len(fleet.members)
        for line in (
            "set safe_mode False",
            f"set max_recent {contexts}",
            "trace -c call Work.step",
        ):
            fleet.execute(line)
        t0 = time.monotonic()
        fill(port, workers, contexts)
        fleet.execute("untrace Work.step")
        filled = time.monotonic() - t0
        one = fleet.live()[-1]

        # the default ls_limit: the newest 1,000 of them all
        limited, one_ls, broadcast, one_trace = [], [], [], []
        shown = fleet.execute("ls /osh/recent")
        for _ in range(rounds):
            limited.append(timed(lambda: fleet.execute("ls /osh/recent")))
            one_ls.append(timed(lambda: one.execute("ls /osh/recent/*/*/*/*")))
            broadcast.append(timed(lambda: fleet.execute("trace Work.other")))
            fleet.execute("untrace Work.other")
            one_trace.append(timed(lambda: one.execute("trace Work.other")))
            one.execute("untrace Work.other")

        # everything: over the list message and over the text path of older workers
        fleet.execute(f"set ls_limit {workers * contexts + 10}")
        structured, text = [], []
        listed = len(fleet.execute("ls /osh/recent").chunks)
        caps = {m.pid: m.remote.welcome.get("caps") for m in fleet.live()}
        for r in range(max(3, rounds // 5)):
            for way in ("list", "text") if r % 2 == 0 else ("text", "list"):
                for m in fleet.live():  # as if no worker offered the list message
                    m.remote.welcome["caps"] = caps[m.pid] if way == "list" else []
                spent = timed(lambda: fleet.execute("ls /osh/recent"))
                (structured if way == "list" else text).append(spent)
        fleet.close()
    finally:
        os.killpg(app.pid, signal.SIGKILL)
        app.wait(10)

    print(f"{n} processes ({workers} workers and their parent), {contexts} contexts each")
    print(
        f"(filled in {filled:.0f} s; {len(shown.chunks)} lines shown by default: {shown.err.strip()})"
    )

    def row(what: str, values: list[float], note: str = "") -> tuple[str, ...]:
        return (
            what,
            f"{percentile(values, 0.5) * MS:.1f}",
            f"{percentile(values, 0.99) * MS:.1f}",
            note,
        )

    table(
        "fleet console",
        [
            row("fleet ls /osh/recent (ls_limit 1000)", limited, f"{rounds} rounds"),
            row("one worker's ls /osh/recent/*/*/*/*", one_ls, "(ls_limit: 1000 paths)"),
            row(f"fleet ls of all {listed} (list message)", structured),
            row(f"fleet ls of all {listed} (text path)", text),
            row("broadcast trace", broadcast, f"{n} processes"),
            row("one worker's trace", one_trace),
        ],
        ("what", "p50 ms", "p99 ms", ""),
    )
    print(
        f"all {listed}: text path / list message x"
        f"{statistics.median(text) / statistics.median(structured):.1f} (median)"
    )
    result("17-fleet-ls-p99-ms", round(percentile(limited, 0.99) * MS, 1), "<=", 200, "ms")
    result("17-fleet-trace-p99-ms", round(percentile(broadcast, 0.99) * MS, 1), "<=", 100, "ms")


def store_figures(quick: bool) -> None:
    """Contexts/s written to PostgreSQL beside SQLite (store_backends.py's writers)."""
    sys.path.insert(0, str(ROOT / "tests" / "persist"))
    from pgcluster import PgCluster, bindir
    from pickle_store import make
    from store_backends import run_one

    from otrace.contexts import postgres, targets
    from otrace.contexts.sqlite import PickleWriter

    if bindir() is None:
        print("\n(PostgreSQL server not found: store figures skipped; apt-get install postgresql)")
        return
    count, rounds = (2_000, 3) if quick else (10_000, 5)
    cluster = PgCluster()
    cluster.start()
    rates: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    try:
        url = cluster.url()
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(rounds):
                contexts = [make(i) for i in range(count)]
                for name in ("sqlite", "postgresql") if r % 2 == 0 else ("postgresql", "sqlite"):
                    if name == "sqlite":
                        w = PickleWriter(Path(tmp) / f"r{r}.db", queue_size=count + 10)
                    else:
                        w = postgres.open_writer(targets.parse(url), queue_size=count + 10)
                    try:
                        rates[name].append(run_one(w, contexts)[1])
                    finally:
                        w.close()
    finally:
        cluster.destroy()
    med = {name: statistics.median(r) for name, r in rates.items()}
    table(
        f"context stores ({count} contexts a round, {rounds} rounds, medians)",
        [(name, f"{rate:,.0f}") for name, rate in med.items()],
        ("store", "written ctx/s"),
    )
    # targets chosen here (the issue names none): a fleet store that keeps up with a busy
    # traced server (1,000 contexts/s) and costs at most half of the local file's rate
    result("17-store-sqlite-ctx-per-s", round(med["sqlite"]), ">=", 1000, "ctx/s")
    result("17-store-postgres-ctx-per-s", round(med["postgresql"]), ">=", 1000, "ctx/s")
    result(
        "17-store-postgres-vs-sqlite",
        round(med["postgresql"] / med["sqlite"], 2),
        ">",
        0.5,
        "ratio",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-store", action="store_true", help="skip PostgreSQL/SQLite")
    opts = parser.parse_args()
    print(machine())
    fleet_figures(8, 10_000, 20 if opts.quick else 100)
    if not opts.no_store:
        store_figures(opts.quick)


if __name__ == "__main__":
    main()
