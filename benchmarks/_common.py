"""Shared helpers for the benchmark scripts: machine facts, interleaved rounds, tables.

Every figure is a ratio of a candidate to its baseline measured in the same run: the
rounds alternate baseline and candidate and the median of each is reported.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine() -> str:
    """``nproc``, the CPU model and the Python version, on one line."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"nproc={os.cpu_count()}, CPU {model}, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.release()}"
    )


def interleave(cases: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Run every case once per round, in turn, ``rounds`` times; the median of each."""
    seen: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(rounds):
        order = list(cases) if r % 2 == 0 else list(reversed(cases))
        for name in order:
            seen[name].append(cases[name]())
    return {name: statistics.median(values) for name, values in seen.items()}


def on_thread(fn: Callable[[], T]) -> T:
    """``fn()`` run on a thread of its own, for a short, plain stack: what a trace context
    captures is then the benchmark's frames, not its bookkeeping (the tables of results in
    ``main``'s variables would be copied and pickled with every context)."""
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(fn()), name="bench")
    thread.start()
    thread.join()
    return out[0]


def table(title: str, rows: list[tuple], header: tuple) -> None:
    """Print a small aligned table."""
    print(f"\n== {title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print(
            "  ".join(
                str(x).ljust(w) if i == 0 else str(x).rjust(w)
                for i, (x, w) in enumerate(zip(row, widths, strict=False))
            )
        )
    sys.stdout.flush()


def emit(figure: str, **values: object) -> None:
    """A machine-readable result line (run_all.py collects them)."""
    print("RESULT " + json.dumps({"figure": figure, **values}))
    sys.stdout.flush()
