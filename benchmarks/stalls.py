"""How long a program thread stalls while the shell shows a huge container.

    python benchmarks/stalls.py [--quick]

A "program" thread sleeps 0.5 ms in a loop and records its longest gap while the shell's
thread formats a container: the builtin ``repr`` of the whole container (what ``pr`` did in
unsafe mode, one C call holding the GIL) against otrace's piecewise formatting
(:func:`otrace.contexts.safe_str`, 100 items per container), and, for a dict, the
``list(d.items())`` snapshot safe mode's ``pure_repr`` took (a tuple per entry for the
garbage collector) against ``islice``.  Sizes 10^5 and 10^6 (10^5 only with ``--quick``);
cases alternate in rounds, medians reported.  The gap includes one switch interval
(``sys.getswitchinterval()``, 5 ms) of ordinary scheduling.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import threading
import time

from _common import emit, interleave, machine, result, table

from otrace.contexts import safe_str


class Probe:
    def __init__(self) -> None:
        self.worst = 0.0
        self.on = False
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        last = time.perf_counter()
        while not self.stop:
            time.sleep(0.0005)
            now = time.perf_counter()
            if self.on:
                self.worst = max(self.worst, now - last)
            last = now

    def gap(self, work) -> float:
        time.sleep(0.01)
        self.worst, self.on = 0.0, True
        time.sleep(0.002)
        work()
        time.sleep(0.002)
        self.on = False
        return self.worst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    print(machine(), f"switch interval {sys.getswitchinterval() * 1000:g} ms")
    probe = Probe()
    rounds = 5 if opts.quick else 9
    rows = []
    for n in (10**5,) if opts.quick else (10**5, 10**6):
        values = {
            "dict": {f"k{i}": i for i in range(n)},
            "list": list(range(n)),
        }
        for kind, value in values.items():
            cases = {
                "builtin repr": lambda v=value: probe.gap(lambda: repr(v)),
                "piecewise": lambda v=value: probe.gap(lambda: safe_str(v, 1_000_000)),
            }
            if kind == "dict":
                cases["items snapshot"] = lambda v=value: probe.gap(lambda: list(v.items()))
                cases["islice"] = lambda v=value: probe.gap(
                    lambda: list(itertools.islice(v.items(), 101))
                )
            got = interleave(cases, rounds)
            for case, seconds in got.items():
                rows.append((f"{kind} of {n:,}", case, f"{seconds * 1000:.1f}"))
                emit("stall", container=kind, size=n, case=case, ms=round(seconds * 1000, 2))
                if case in ("builtin repr", "piecewise"):  # the bound: 100 ms
                    op, target = ("<=", 100) if case == "piecewise" else ("--", "--")
                    result(
                        f"stall-{kind}-{n}-{case.split()[-1]}-ms", seconds * 1000, op, target, "ms"
                    )
    probe.stop = True
    table(
        "longest program-thread gap while formatting (ms, median)",
        rows,
        ("container", "how", "gap ms"),
    )


if __name__ == "__main__":
    main()
