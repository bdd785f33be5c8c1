"""The ``pickle_file`` writer beside a program that raises in a tight loop, by how a batch is
inserted: ``executemany`` (the old way) and :meth:`PickleWriter.insert` (a few multi-row
INSERTs), side by side in one run.

    python benchmarks/pickle_convoy.py [N] [ROUNDS]     (default 3000 contexts, 5 rounds;
                                                         N=0: part 2 only)

The "writer convoy" suspected: every sqlite3 call releases the GIL (``executemany``: about
four per row, 2,000 for a batch of 500 -- callgrind counts ``PyEval_SaveThread``), and a
thread that gave the GIL up while another one computes may get it back only when that one
is made to yield, a switch interval later (``sys.getswitchinterval()``, 5 ms).

1. End to end: a traced thread raises ``recording.py``'s 20-frame exception N times without
   a pause, from an empty queue (the queue holds N: every context is frozen in every case).
   Per case, medians over rounds that alternate the cases: the traced thread's CPU time per
   context; contexts committed while the loop ran, per second of it; the writer's own rate
   (rows of the batches it committed during the loop per second it spent on them), and per
   batch of 200 rows or more its milliseconds pickling and inserting (BEGIN..COMMIT, wall)
   and its voluntary context switches while inserting (``RUSAGE_THREAD``: waits for the GIL,
   or for the disk); then the rest written by ``close`` with the program thread idle.
2. The insert alone: one batch of 500 rows of B bytes each (4,200 is such an exception
   context pickled) written by the benchmark's thread while the traced loop runs beside
   it, alternating the two ways: milliseconds per batch (median and upper quartile) and
   voluntary context switches.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import machine, on_thread
from recording import make

from otrace.contexts import sqlite
from otrace.contexts.sqlite_format import INSERT
from otrace.contexts.sqlite_writer import PickleWriter
from otrace.contexts.writer_thread import Row
from otrace.log import add_sink
from otrace.runtime import default
from otrace.tracing import trace, unwrap_all


class Measured(PickleWriter):
    """A PickleWriter that times its batches (writer thread only)."""

    def connect(self) -> None:
        super().connect()
        self.batches: list[tuple[int, float, float, int]] = []
        self._begun = (0.0, 0)

    def ready(self) -> bool:  # the start of a batch, before its contexts are pickled
        self._begun = (time.perf_counter(), 0)
        return True

    def write_rows(self, rows: list[Row]) -> None:
        t0 = self._begun[0]
        t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_THREAD)
        super().write_rows(rows)
        t2, r2 = time.perf_counter(), resource.getrusage(resource.RUSAGE_THREAD)
        self.batches.append((len(rows), t1 - t0, t2 - t1, r2.ru_nvcsw - r1.ru_nvcsw))


class Executemany(Measured):
    """The old insert: one ``sqlite3_step`` (one GIL release) per row."""

    def insert(self, conn: sqlite3.Connection, rows: list[Row]) -> None:
        conn.executemany(INSERT, rows)


CASES = {"executemany (old)": Executemany, "insert (now)": Measured}


class Direct(PickleWriter):
    """A PickleWriter without its thread: the benchmark calls write_rows itself."""

    def _start(self) -> None:
        pass

    def count(self, name: str, n: int = 1) -> None:
        pass


class DirectExecutemany(Direct):
    insert = Executemany.insert


def insert_beside(mod, order, tmp: str, rounds: int) -> None:
    """Part 2: 500-row batches inserted beside the traced loop."""
    stop = []

    def loop() -> None:
        while not stop:
            try:
                mod.deep(19, mod.fail, order, 5)
            except ValueError:
                pass

    program = threading.Thread(target=loop, name="bench")
    program.start()
    cases = {"executemany (old)": DirectExecutemany, "insert (now)": Direct}
    sizes = (4_200, 20_000)
    seen: dict[tuple, list[tuple[float, int]]] = {(k, b): [] for b in sizes for k in cases}
    try:
        for size in sizes:
            blob = os.urandom(size)
            rows = [
                (f"k{i}", "exceptions", "fail", "ValueError", f"t{i}", time.time(), 1, blob)
                for i in range(500)
            ]
            for r in range(rounds * 2):
                for name in list(cases) if r % 2 == 0 else list(reversed(cases)):
                    w = cases[name](Path(tmp) / f"direct-{size}-{r}-{name[:4]}.db")
                    for _ in range(3):
                        r0, t0 = resource.getrusage(resource.RUSAGE_THREAD), time.perf_counter()
                        w.write_rows(rows)
                        t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_THREAD)
                        seen[name, size].append((t1 - t0, r1.ru_nvcsw - r0.ru_nvcsw))
                    w.disconnect()
    finally:
        stop.append(True)
        program.join()
    print(f"\n== 2. A 500-row batch inserted beside the traced loop ({rounds * 6} batches each)")
    print(
        f"{'case':18s} {'row bytes':>10s} {'ms':>8s} {'ms, q3':>8s} {'ms, mean':>9s} "
        f"{'waits':>6s} {'waits, mean':>12s}"
    )
    for (name, size), runs in seen.items():
        q3 = statistics.quantiles([t for t, _ in runs], n=4)[2]
        print(
            f"{name:18s} {size:10d} {statistics.median(t for t, _ in runs) * 1e3:8.1f} "
            f"{q3 * 1e3:8.1f} {statistics.fmean(t for t, _ in runs) * 1e3:9.1f} "
            f"{statistics.median(w for _, w in runs):6.0f} "
            f"{statistics.fmean(w for _, w in runs):12.1f}"
        )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    print(machine(), f"switch interval {sys.getswitchinterval() * 1e3:g} ms")
    params = default().params
    add_sink(lambda text: None)
    params.set("trace_handled", True)
    mod = make()
    order = mod.Order(3)
    trace(mod.fail, mod, "fail")
    tmp = tempfile.TemporaryDirectory()
    hook = default().persistence

    def case(cls: type[Measured], r: int):
        def go() -> tuple:
            writer = cls(Path(tmp.name) / f"convoy-{r}-{cls.__name__}.db", queue_size=n + 10)
            hook.writer = writer  # what pickle_file would open, with this class
            try:
                t0, c0 = time.perf_counter(), time.thread_time()
                for _ in range(n):
                    try:
                        mod.deep(19, mod.fail, order, 5)
                    except ValueError:
                        pass
                cpu, wall = time.thread_time() - c0, time.perf_counter() - t0
                stats = writer.stats()
                during = list(writer.batches)
            finally:
                hook.writer = None
                t1 = time.perf_counter()
                writer.close(600)  # the writer alone: the program thread waits
                alone = time.perf_counter() - t1
            assert writer.stats()["written"] == n, writer.stats()
            after = writer.batches[len(during) :]
            return (
                stats["written"] / wall,
                cpu / n * 1e6,
                during,
                (n - stats["written"]) / alone,
                after,
            )

        return go

    if n:  # N=0: part 2 only
        sqlite.install()
        seen: dict[str, list[tuple]] = {k: [] for k in CASES}
        for r in range(rounds):
            for name in list(CASES) if r % 2 == 0 else list(reversed(CASES)):
                seen[name].append(on_thread(case(CASES[name], r)))
        sqlite.uninstall()
        report(seen, n, rounds)
    insert_beside(mod, order, tmp.name, rounds)
    unwrap_all()
    tmp.cleanup()


def report(seen: dict[str, list[tuple]], n: int, rounds: int) -> None:
    print(f"\n== 1. Writing while the program raises in a tight loop ({rounds} rounds of {n})")
    print(
        f"{'case':18s} {'traced CPU us':>14s} {'written/s':>10s} {'writer rate/s':>14s} "
        f"{'batches':>8s} {'pickle ms':>10s} {'insert ms':>10s} {'insert waits':>13s} "
        f"{'alone/s':>8s} {'alone insert ms':>16s}"
    )
    med = statistics.median
    for name, runs in seen.items():
        batches = [b for run in runs for b in run[2]]
        full = [b for b in batches if b[0] >= 200] or [(0, 0.0, 0.0, 0)]
        rate = sum(b[0] for b in batches) / max(sum(b[1] + b[2] for b in batches), 1e-9)
        print(
            f"{name:18s} {med(x[1] for x in runs):14.1f} {med(x[0] for x in runs):10.0f} "
            f"{rate:14.0f} {len(batches):8d} {med(b[1] for b in full) * 1e3:10.1f} "
            f"{med(b[2] for b in full) * 1e3:10.1f} {med(b[3] for b in full):13.0f} "
            f"{med(x[3] for x in runs):8.0f} "
            f"{med(b[2] for run in runs for b in run[4] if b[0] >= 200) * 1e3:16.1f}"
        )
    print(
        "written/s: committed while the loop ran, per second of it; writer rate: rows of the "
        "batches committed while the loop ran per second the writer spent on them; pickle ms, "
        "insert ms (BEGIN..COMMIT), insert waits: medians over those batches of 200 rows or "
        "more (wall time; waits: the writer's voluntary context switches); alone/s: the "
        "rest written after the loop (close), the program thread waiting, and those batches' "
        "insert ms"
    )


if __name__ == "__main__":
    main()
