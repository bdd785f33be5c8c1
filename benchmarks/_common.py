"""Shared helpers for the benchmark scripts: machine facts, interleaved rounds, tables.

Every figure is a ratio of a candidate to its baseline measured in the same run: the
rounds alternate baseline and candidate and the median of each is reported.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def source_at(rev: str, path: str) -> str:
    """The text of ``path`` (relative to the repository) at commit ``rev``, from git."""
    return subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def machine() -> str:
    """``nproc``, the CPU model, the Python version and the load average now, on one line."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    one, five, fifteen = os.getloadavg()
    return (
        f"nproc={os.cpu_count()}, CPU {model}, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.release()}, "
        f"load average {one:.2f} {five:.2f} {fifteen:.2f}, "
        f"reference loop {reference_loop():.2f} us"
    )


def _reference_step(n: int) -> int:
    d: dict[str, object] = {}
    out = []
    for i in range(n):
        key = "k" + str(i % 7)
        d[key] = (i, key)
        out.append(len(d) + len(repr(d[key])))
    return sum(out)


def reference_loop() -> float:
    """Microseconds for a fixed piece of plain Python (dict, str, tuple, list, repr: the kind
    of work recording does), the best of seven.  Machines and interpreter builds differ by
    2x and more (a pyenv build without PGO/LTO against a distribution's): figures from two
    runs compare only in proportion to this."""
    best = float("inf")
    for _ in range(7):
        start = time.perf_counter()
        _reference_step(1000)
        best = min(best, time.perf_counter() - start)
    return best * 1e6 / 1000


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


def result(figure: str, value: float, op: str, target: float | str, unit: str) -> None:
    """One summary line for ``run_all.py``: ``RESULT <figure-id> <value> <op> <target> <unit>``.

    ``op`` is ``<=`` or ``>=`` (the value meets the target when ``value op target``), or
    ``--`` for a figure without a target (``target`` then ``--``).  Figure ids have no blanks.
    """
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    print(f"RESULT {figure} {shown} {op} {target} {unit}")
    sys.stdout.flush()


def slug(text: str) -> str:
    """``text`` as part of a figure id: lower case, words joined by ``-``."""
    return "-".join(re.findall(r"[a-z0-9.=]+", text.lower()))


def emit(figure: str, **values: object) -> None:
    """A machine-readable detail line, ``DATA {json}`` (the summary lines are ``result``)."""
    print("DATA " + json.dumps({"figure": figure, **values}))
    sys.stdout.flush()


def callgrind_child(run: Callable[[], object]) -> None:
    """The child's side of :func:`callgrind_per_iteration`: say READY, wait for "go", call
    ``run`` (the counted part), say DONE, wait again (instrumentation is switched off)."""
    print("READY", flush=True)
    sys.stdin.readline()
    run()
    print("DONE", flush=True)
    sys.stdin.readline()


def callgrind_per_iteration(argv: list[str], n: int, what: str) -> float:
    """Instructions per iteration of a child's loop, counted by valgrind's callgrind.

    ``argv`` (a Python script and its arguments) is run under callgrind with instrumentation
    off; it must print ``READY``, read a line, run its ``n`` iterations, print ``DONE`` and
    read a line.  Instrumentation is switched on between the two (``callgrind_control -i``),
    so only the loop is counted: a figure the machine's load does not move.  ``what`` names
    the case in errors.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        cmd += [f"--callgrind-out-file={out}", sys.executable, *argv]
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'benchmarks'}"}
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            for want, switch in (("READY", "on"), ("DONE", "off")):
                line = proc.stdout.readline().strip()
                if line != want:
                    raise RuntimeError(f"{what}: expected {want}, got {line!r}")
                subprocess.run(
                    ["callgrind_control", "-i", switch, str(proc.pid)],
                    check=True,
                    capture_output=True,
                    timeout=60,
                )
                proc.stdin.write("go\n")
                proc.stdin.flush()
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        total = 0
        for path in Path(tmp).glob("callgrind.out*"):
            # ("summary" counts from the start, 0 here; "totals" what was instrumented)
            for found in re.findall(r"^(?:summary|totals): (\d+)", path.read_text(), re.M):
                total = max(total, int(found))
        return total / n
