"""The ``pickle_file`` freeze side by side with an earlier version of it, in one process.

    python benchmarks/freeze_types.py [--before REV] [--rounds N] [--instructions]

The earlier ``otrace/contexts/freeze.py`` is read from git (``REV``, default ``34e7cf5``:
the freeze before its type checks stopped hashing program classes) and loaded beside the
current one.  Both freeze the same exception contexts, captured raw at the bottom of
``recording.py``'s 20-frame stack, in two shapes:

* *plain*: ``recording.py``'s frames (a tuple of a program object and an int in each);
* *containers*: every frame also holds a list, a dict and a tuple holding a list, so the
  copying paths run too.

Timed: the traced thread's CPU per freeze, the two versions alternating in rounds (medians).
``--instructions``: instructions per freeze, counted by callgrind in child processes (the
machine's load does not move them; needs valgrind).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import sys
import threading
import time
import types
from typing import Any

from _common import callgrind_per_iteration, machine, source_at, table

from otrace.contexts import capture
from otrace.contexts import freeze as current
from otrace.contexts.record import TraceContext

SRC = """
class Order:
    def __init__(self, n):
        self.n = n

def deep(k, f, *args):
    if k:
        return deep(k - 1, f, *args)
    return f(*args)

def deep_holding(k, f, *args):
    items, opts, pair = [1, 2], {"fast": True}, (1, [2])
    if k:
        return deep_holding(k - 1, f, *args)
    return f(*args)
"""

SHAPES = ("plain", "containers")
# a global: a list in a variable of the capturing frames would be copied by every freeze
MADE: list[TraceContext] = []


def earlier(rev: str) -> types.ModuleType:
    """``otrace/contexts/freeze.py`` at ``rev``, loaded as a module of its own."""
    source = source_at(rev, "otrace/contexts/freeze.py")
    spec = importlib.util.spec_from_loader("otrace.contexts._freeze_before", loader=None)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # (its dataclasses look their module up)
    exec(compile(source, f"<freeze.py at {rev}>", "exec"), mod.__dict__)
    return mod


def contexts(shape: str, n: int) -> list[TraceContext]:
    """``n`` exception contexts captured raw at the bottom of a 20-frame stack, on a thread
    whose frames hold nothing of the benchmark's (a frame holding the list of results would
    have it copied by every freeze)."""
    thread = threading.Thread(target=_capture, args=(shape, n), name="bench")
    thread.start()
    thread.join()
    made = MADE[:]
    del MADE[:]
    return made


def _capture(shape: str, n: int) -> None:
    mod = types.ModuleType("bench_freeze")
    exec(compile(SRC, "<bench_freeze>", "exec"), mod.__dict__)
    walk = mod.deep if shape == "plain" else mod.deep_holding
    order = mod.Order(3)
    for _ in range(n):
        walk(19, _grab, order, 5)


def _grab(order: Any, qty: int) -> None:
    try:
        raise ValueError(qty)
    except ValueError as exc:
        values, trc = capture.capture_exception(exc, exc.__traceback__, sys._getframe(1))
        MADE.append(TraceContext("exceptions", "fail", "ValueError", values, trc))


def timed(freeze: Any, made: list[TraceContext]) -> float:
    t0 = time.thread_time()
    for ctx in made:
        freeze(ctx, 1)
    return (time.thread_time() - t0) / len(made)


def child(which: str, shape: str, rev: str, n: int) -> None:
    """Under callgrind: freeze ``n`` contexts between READY and DONE."""
    freeze = (earlier(rev) if which == "before" else current).freeze_context
    made = contexts(shape, n)
    print("READY", flush=True)
    sys.stdin.readline()
    for ctx in made:
        freeze(ctx, 1)
    print("DONE", flush=True)
    sys.stdin.readline()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default="34e7cf5")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("WHICH", "SHAPE"), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        child(*opts.child, opts.before, opts.n)
        return
    print(machine())
    versions = {"before": earlier(opts.before).freeze_context, "now": current.freeze_context}
    rows = []
    for shape in SHAPES:
        made = contexts(shape, opts.n)
        seen: dict[str, list[float]] = {k: [] for k in versions}
        for r in range(opts.rounds):
            for name in list(versions) if r % 2 == 0 else list(reversed(versions)):
                freeze = versions[name]
                seen[name].append(timed(freeze, made))
        us = {k: statistics.median(v) * 1e6 for k, v in seen.items()}
        counts = {}
        if opts.instructions and shutil.which("valgrind"):
            for name in versions:
                argv = [__file__, "--child", name, shape, "--before", opts.before]
                argv += ["--n", str(opts.n)]
                counts[name] = callgrind_per_iteration(argv, opts.n, f"{name} {shape}")
        rows.append(
            (
                shape,
                f"{us['before']:.2f}",
                f"{us['now']:.2f}",
                f"{us['now'] - us['before']:+.2f}",
                f"{counts['before']:,.0f}" if counts else "--",
                f"{counts['now']:,.0f}" if counts else "--",
            )
        )
    table(
        f"Freeze per context, {opts.before} vs now ({opts.rounds} rounds of {opts.n}; "
        "traced-thread CPU us, medians; instructions per freeze)",
        rows,
        ("shape", "before us", "now us", "now - before", "before instr.", "now instr."),
    )


if __name__ == "__main__":
    main()
