"""The ``pickle_file`` writer beside a program that raises in a tight loop, by how a batch is
inserted: ``executemany`` (the old way) and :meth:`PickleWriter.insert` (now), side by side.

    python benchmarks/pickle_convoy.py [N] [ROUNDS]     (default 3000 contexts, 5 rounds)

A traced thread raises ``recording.py``'s 20-frame exception N times without a pause, from
an empty queue (N is at most the queue's bound: nothing is dropped, so every context is
frozen in every case).  Per case, medians over rounds that alternate the cases:

* *written/s*: contexts the writer committed while the loop ran, per second of the loop;
* *traced CPU us*: the traced thread's CPU time per context (``time.thread_time``);
* per batch the writer wrote during the loop: its rows, its milliseconds pickling and
  inserting (wall), and its voluntary context switches while inserting (``RUSAGE_THREAD``
  of the writer thread) -- each is a wait for the GIL (or for SQLite's file lock): SQLite's
  C calls release the GIL, and a thread that gave it up while another one computes gets it
  back only when that one is made to yield, a switch interval later
  (``sys.getswitchinterval()``, 5 ms).

The "writer convoy" this measures: ``executemany`` steps its statement once per row, each
step a GIL release, so each row costs a switch interval while the program computes.
"""

from __future__ import annotations

import resource
import sqlite3
import statistics
import sys
import tempfile
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
                writer.close(600)
            assert writer.stats()["written"] == n, writer.stats()
            return stats["written"] / wall, cpu / n * 1e6, during

        return go

    sqlite.install()
    seen: dict[str, list[tuple]] = {k: [] for k in CASES}
    for r in range(rounds):
        for name in list(CASES) if r % 2 == 0 else list(reversed(CASES)):
            seen[name].append(on_thread(case(CASES[name], r)))
    unwrap_all()
    sqlite.uninstall()
    tmp.cleanup()
    print(f"\n== Writing while the program raises in a tight loop ({rounds} rounds of {n})")
    print(
        f"{'case':18s} {'traced CPU us':>14s} {'written/s':>10s} {'writer rate/s':>14s} "
        f"{'batches':>8s} {'pickle ms':>10s} {'insert ms':>10s} {'insert waits':>13s}"
    )
    med = statistics.median
    for name, runs in seen.items():
        batches = [b for run in runs for b in run[2]]
        full = [b for b in batches if b[0] >= 200] or [(0, 0.0, 0.0, 0)]
        rate = sum(b[0] for b in batches) / max(sum(b[1] + b[2] for b in batches), 1e-9)
        print(
            f"{name:18s} {med(x[1] for x in runs):14.1f} {med(x[0] for x in runs):10.0f} "
            f"{rate:14.0f} {len(batches):8d} {med(b[1] for b in full) * 1e3:10.1f} "
            f"{med(b[2] for b in full) * 1e3:10.1f} {med(b[3] for b in full):13.0f}"
        )
    print(
        "written/s: committed while the loop ran, per second of it; writer rate: rows of the "
        "batches committed while the loop ran per second the writer spent on them; pickle ms, "
        "insert ms (BEGIN..COMMIT), insert waits: medians over those batches of 200 rows or "
        "more (wall time; waits: the writer's voluntary context switches)"
    )


if __name__ == "__main__":
    main()
