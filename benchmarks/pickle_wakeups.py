"""Where the traced thread's CPU goes beside the pickle writer, in ``pickle_store.py``'s
rhythm where the writer keeps up (10 exception contexts, a 5 ms pause, a flush).

    python benchmarks/pickle_wakeups.py [ROUNDS [FRACTION]]   (default 9 1; from the repo root)

Per group of 10 contexts, without and with ``pickle_file`` (rounds alternate, medians): the
traced thread's CPU in the contexts, in the pause and in the flush, and its voluntary
context switches in each (``getrusage(RUSAGE_THREAD)``: a count, steadier than the times
on a shared machine).  Each wait and wake-up of a thread costs CPU of its own -- tens of
microseconds on a virtual machine, where a 5 ms sleep alone costs about 40 us -- so a writer
that still holds the GIL when the traced thread wakes, or a flush that waits, shows here as
switches beyond the pause's one.  FRACTION < 1 makes the writer pickle only that part of the
contexts (the rest are skipped, not written): how the switches follow the writer's work.
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine, on_thread  # noqa: E402
from pickle_store import PAUSE, module  # noqa: E402

from otrace.contexts import sqlite, writer_thread  # noqa: E402
from otrace.log import add_sink  # noqa: E402
from otrace.runtime import default  # noqa: E402
from otrace.tracing import trace, unwrap_all  # noqa: E402

GROUPS = 30
PHASES = ("contexts", "pause", "flush")


def switches() -> int:
    """The calling thread's voluntary context switches so far."""
    return resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw


def lighten(fraction: float) -> None:
    """Make the writer pickle only ``fraction`` of the contexts (the others give no row)."""
    encode = writer_thread.BatchWriter._encode
    owed = [0.0]

    def some(self, snap):
        owed[0] += fraction
        if owed[0] < 1:
            return None
        owed[0] -= 1
        return encode(self, snap)

    writer_thread.BatchWriter._encode = some  # type: ignore[method-assign]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    fraction = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    if fraction < 1:
        lighten(fraction)
    params = default().params
    add_sink(lambda text: None)
    params.set("trace_handled", True)
    mod = module("bench_pickle")
    order = mod.Order(3)
    trace(mod.fail, mod, "fail")
    sqlite.install()
    clock = time.thread_time

    def groups(path: str | None) -> list[float]:
        """CPU (us) and switches per group in each phase: contexts, pause, flush."""
        if path:
            params.set("pickle_file", path)
        w = sqlite.writer()
        if w is not None:
            assert w.flush(60)
        cpu, count = [0.0] * 3, [0] * 3
        try:
            for _ in range(GROUPS):
                marks = [(clock(), switches())]
                for _ in range(10):
                    try:
                        mod.deep(19, mod.fail, order, 5)
                    except ValueError:
                        pass
                marks.append((clock(), switches()))
                time.sleep(PAUSE)
                marks.append((clock(), switches()))
                if w is not None:
                    assert w.flush(60)
                marks.append((clock(), switches()))
                for k in range(3):
                    cpu[k] += marks[k + 1][0] - marks[k][0]
                    count[k] += marks[k + 1][1] - marks[k][1]
        finally:
            params.set("pickle_file", "")
        return [c / GROUPS * 1e6 for c in cpu] + [n / GROUPS for n in count]

    with tempfile.TemporaryDirectory() as tmp:
        cases = {"without the file": None, "with pickle_file": str(Path(tmp) / "w.db")}
        seen: dict[str, list[list[float]]] = {k: [] for k in cases}
        for r in range(rounds):
            for name in list(cases) if r % 2 == 0 else list(reversed(cases)):
                path = cases[name]
                seen[name].append(on_thread(lambda: groups(path)))  # noqa: B023 (run at once)
    print(machine())
    if fraction < 1:
        print(f"(the writer pickles {fraction:.0%} of the contexts)")
    print(f"\n== per group of 10 contexts ({rounds} rounds of {GROUPS} groups; medians)")
    print(f"{'case':18s} " + " ".join(f"{p + ' us':>12s}" for p in PHASES) + "  switches")
    med = {k: [statistics.median(v[i] for v in vs) for i in range(6)] for k, vs in seen.items()}
    for name, m in med.items():
        print(
            f"{name:18s} "
            + " ".join(f"{x:12.1f}" for x in m[:3])
            + "  "
            + " / ".join(f"{x:.1f}" for x in m[3:])
        )
    a, b = med["without the file"], med["with pickle_file"]
    share = (sum(b[:3]) - sum(a[:3])) / 10
    extra = sum(b[3:]) - sum(a[3:])
    print(
        f"the file's share per context {share:.1f} us; switches beyond the pause's: "
        f"{extra:.1f} per group (contexts / pause / flush: "
        + " / ".join(f"{y - x:.1f}" for x, y in zip(a[3:], b[3:], strict=True))
        + ")"
    )
    unwrap_all()
    sqlite.uninstall()


if __name__ == "__main__":
    main()
