"""What ``pickle_file`` costs the traced thread in a tight loop, by the state of the queue.

    python benchmarks/pickle_queue_states.py [N] [ROUNDS]     (default 1000 contexts, 3)

``recording.py``'s exception loop (20 frames, no pause), timed on the traced thread's CPU
clock, with the writer's queue in each of these states when the timed loop starts:

* *from empty*: a fresh writer -- a burst from a quiet start (``recording.py``'s rows);
* *from empty, writer held*: the same, with the writer thread kept off its work (its I/O
  lock held): no GIL hand-offs, no writer allocations -- what is left is the traced
  thread's own work (the freeze, and collections of the backlog it builds);
* *queue full*: an untimed loop has filled the queue to its bound first, the writer runs:
  most contexts are dropped;
* *queue full, writer held*: every context is dropped.

Per state: CPU per context, the traced thread's garbage collections (``gc.callbacks``: time
per context and collections per generation), the contexts dropped and written during the
timed loop, and its system time and voluntary context switches (``RUSAGE_THREAD``: GIL
hand-offs wait in the kernel).  A diagnosis, not a figure of the summary.
"""

from __future__ import annotations

import gc
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import machine, on_thread
from recording import make

from otrace.contexts import sqlite, writer_thread
from otrace.log import add_sink
from otrace.runtime import default
from otrace.tracing import trace, unwrap_all

STATES = {
    "no file": (False, False, False),
    "from empty": (True, False, False),
    "from empty, writer held": (True, True, False),
    "queue full": (True, False, True),
    "queue full, writer held": (True, True, True),
}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print(machine())
    params = default().params
    add_sink(lambda text: None)
    params.set("trace_handled", True)
    mod = make()
    order = mod.Order(3)
    trace(mod.fail, mod, "fail")
    sqlite.install()
    tmp = tempfile.TemporaryDirectory()
    in_gc = {"start": 0.0, "total": 0.0, "gens": [0, 0, 0]}

    def gc_timer(phase, info):
        if threading.current_thread().name != "bench":
            return
        if phase == "start":
            in_gc["start"] = time.thread_time()
        else:
            in_gc["total"] += time.thread_time() - in_gc["start"]
            in_gc["gens"][info["generation"]] += 1

    def loop(count: int) -> None:
        for _ in range(count):
            try:
                mod.deep(19, mod.fail, order, 5)
            except ValueError:
                pass

    def state(pickle: bool, held: bool, full: bool):
        def go() -> tuple:
            if pickle:
                params.set("pickle_file", str(Path(tmp.name) / "states.db"))
            w = sqlite.writer()
            try:
                if held and w is not None:
                    w._io_lock.acquire()  # the writer stops before its next write
                if full:
                    loop(writer_thread.QUEUE_SIZE * 3 // 2)
                before = w.stats() if w is not None else None
                in_gc["total"], in_gc["gens"] = 0.0, [0, 0, 0]
                r0 = resource.getrusage(resource.RUSAGE_THREAD)
                t0 = time.thread_time()
                loop(n)
                cpu = (time.thread_time() - t0) / n
                r1 = resource.getrusage(resource.RUSAGE_THREAD)
                after = w.stats() if w is not None else None
            finally:
                if held and w is not None:
                    w._io_lock.release()
                params.set("pickle_file", "")
            moved = (
                (after["dropped"] - before["dropped"], after["written"] - before["written"])
                if after is not None and before is not None
                else (0, 0)
            )
            return (
                cpu * 1e6,
                in_gc["total"] / n * 1e6,
                tuple(in_gc["gens"]),
                moved,
                (r1.ru_stime - r0.ru_stime) / n * 1e6,
                (r1.ru_nvcsw - r0.ru_nvcsw) / n,
            )

        return go

    gc.callbacks.append(gc_timer)
    seen: dict[str, list[tuple]] = {k: [] for k in STATES}
    for r in range(rounds):
        for name in list(STATES) if r % 2 == 0 else list(reversed(STATES)):
            seen[name].append(on_thread(state(*STATES[name])))
    gc.callbacks.remove(gc_timer)
    unwrap_all()
    sqlite.uninstall()
    tmp.cleanup()
    base = statistics.median(x[0] for x in seen["no file"])
    print(f"\n== The traced thread in a tight loop, by the queue's state ({rounds} rounds of {n})")
    print(
        f"{'state':26s} {'CPU us':>7s} {'share':>7s} {'gc us':>6s} {'gc runs (0/1/2)':>16s} "
        f"{'dropped':>8s} {'written':>8s} {'sys us':>7s} {'switches':>9s}"
    )
    for name, runs in seen.items():
        cpu = statistics.median(x[0] for x in runs)
        gcs = [x[2] for x in runs]
        print(
            f"{name:26s} {cpu:7.1f} {cpu - base:7.1f} "
            f"{statistics.median(x[1] for x in runs):6.1f} "
            f"{'/'.join(str(statistics.median(g[i] for g in gcs)) for i in range(3)):>16s} "
            f"{statistics.median(x[3][0] for x in runs):8.0f} "
            f"{statistics.median(x[3][1] for x in runs):8.0f} "
            f"{statistics.median(x[4] for x in runs):7.1f} "
            f"{statistics.median(x[5] for x in runs):9.2f}"
        )


if __name__ == "__main__":
    main()
