"""Contexts written per second: the PostgreSQL store beside the SQLite file, in one run.

    python benchmarks/store_backends.py [--quick] [--url postgresql://...]

Without ``--url`` a throwaway PostgreSQL cluster is started on a unix socket (Debian's
server, as tests/persist/pgcluster.py does; needs the postgresql package).  Each round gives
both writers the same contexts (small call traces, as benchmarks/pickle_store.py makes);
rounds alternate the order and the median is reported, with the PostgreSQL/SQLite ratio.
Two figures per back end: the traced thread's cost per context (submit: freeze + queue) and
contexts per second from the first submit to the last commit.  Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine, result, table

sys.path.insert(0, str(ROOT / "tests" / "persist"))

from pickle_store import make  # noqa: E402

from otrace.contexts import targets  # noqa: E402
from otrace.contexts.sqlite import PickleWriter  # noqa: E402


def run_one(writer, contexts) -> tuple[float, float]:
    """(us per submit, contexts/s to the last commit) for one batch."""
    t0 = time.perf_counter()
    for ctx in contexts:
        writer.submit(ctx)
    t1 = time.perf_counter()
    writer.flush(600)
    t2 = time.perf_counter()
    stats = writer.stats()
    assert stats["dropped"] == 0 and stats["failed"] == 0, stats
    return (t1 - t0) / len(contexts) * 1e6, len(contexts) / (t2 - t0)


def database_away(cluster, url: str, count: int) -> dict[str, tuple[float, float]]:
    """Median and worst submit cost (us) with the database up, frozen, then stopped."""
    from otrace.contexts import postgres

    w = postgres.open_writer(
        targets.parse(url), queue_size=1000, statement_timeout=2.0, report=lambda text: None
    )
    out: dict[str, tuple[float, float]] = {}
    try:
        for state in ("up", "frozen", "stopped"):
            if state == "frozen":
                cluster.freeze()
            elif state == "stopped":
                cluster.thaw()
                cluster.stop("immediate")
            costs = []
            for ctx in (make(i) for i in range(count)):
                t0 = time.perf_counter()
                w.submit(ctx)
                costs.append((time.perf_counter() - t0) * 1e6)
            out[state] = (statistics.median(costs), max(costs))
    finally:
        w.close(2.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--url", help="a PostgreSQL store to write to (default: a throwaway one)")
    opts = parser.parse_args()
    count, rounds = (2_000, 3) if opts.quick else (20_000, 5)
    cluster = None
    url = opts.url
    if url is None:
        from pgcluster import PgCluster

        cluster = PgCluster()
        cluster.start()
        url = cluster.url()
    print(machine())
    print(f"{count} contexts per round, {rounds} rounds; PostgreSQL at {targets.display(url)}")
    from otrace.contexts import postgres

    results: dict[str, list[tuple[float, float]]] = {"sqlite": [], "postgresql": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(rounds):
                contexts = [make(i) for i in range(count)]
                order = ["sqlite", "postgresql"] if r % 2 == 0 else ["postgresql", "sqlite"]
                for name in order:
                    if name == "sqlite":
                        w = PickleWriter(Path(tmp) / f"r{r}.db", queue_size=count + 10)
                    else:
                        w = postgres.open_writer(targets.parse(url), queue_size=count + 10)
                    try:
                        results[name].append(run_one(w, contexts))
                    finally:
                        w.close()
        away = database_away(cluster, url, count) if cluster is not None else None
    finally:
        if cluster is not None:
            cluster.destroy()
    med = {
        name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
        for name, rs in results.items()
    }
    rows = [(name, f"{us:.1f}", f"{rate:,.0f}") for name, (us, rate) in med.items()]
    table("context stores", rows, ("store", "submit us/ctx", "written ctx/s"))
    for name, (us, rate) in med.items():
        result(f"store-{name}-submit-us", us, "--", "--", "us")
        result(f"store-{name}-written-per-s", rate, "--", "--", "1/s")
    print(
        f"PostgreSQL/SQLite: submit x{med['postgresql'][0] / med['sqlite'][0]:.2f}, "
        f"written per second x{med['postgresql'][1] / med['sqlite'][1]:.2f}"
    )
    if away is not None:
        rows = [(state, f"{us:.1f}", f"{worst / 1e3:.2f}") for state, (us, worst) in away.items()]
        table(
            "the traced thread while the database is up, frozen (SIGSTOP), stopped",
            rows,
            ("database", "submit us/ctx (median)", "worst submit ms"),
        )
        up = away["up"][0]
        print(
            "database frozen/up: x"
            + f"{away['frozen'][0] / up:.2f}"
            + ", stopped/up: x"
            + f"{away['stopped'][0] / up:.2f}"
        )


if __name__ == "__main__":
    main()
