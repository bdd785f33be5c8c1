"""Figures 2 and 3: what tracing costs per call, side by side with the alternatives.

    python benchmarks/trace_overhead.py [--quick]      (any Python >= 3.11; run with 3.12
                                                       and 3.13 too: run_all.py does)

2. A traced function whose condition does not match vs the bare call and the thinnest
   pass-through wrapper ``def w(*a, **k): return f(*a, **k)``, for both back ends: the
   function instrumented in place (the default) and a wrapper (the fallback where there is no
   source).  Targets (issue 19): the *added* cost of an argument condition <= 1.0x the thin
   wrapper's added cost, of an exceptions-only trace <= 0.8x.  On 3.12+ also the floor of a
   ``sys.monitoring`` back end: a PY_START event set locally on the one code object whose
   callback returns at once, and the cost of PY_UNWIND, which can only be global.
3. Untraced code while 50 other functions are traced (exceptions only) vs no tracing at all;
   and the same selection made with python-hunter (a ``sys.settrace`` tracer), if installed.

Rounds alternate the cases; each figure is the median of the rounds.
"""

from __future__ import annotations

import argparse
import linecache
import platform
import sys
import timeit
import types

from _common import emit, interleave, machine, result, slug, table

from otrace.log import add_sink
from otrace.tracing import instrument, trace, unwrap_all


def make_module(name: str, count: int = 1, fname: str = "add") -> types.ModuleType:
    """A module with ``fname(a, b=2)`` and ``f0..f{count-1}``.  Trace keys are bare names,
    so functions traced at the same time need distinct names."""
    mod = types.ModuleType(name)
    src = f"def {fname}(a, b=2):\n    return a + b\n"
    src += "".join(f"def f{i}(x):\n    return x\n" for i in range(count))
    filename = f"<{name}>"
    # its source, as a module imported from a file has it (in-place tracing reads it)
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    exec(compile(src, filename, "exec"), mod.__dict__)
    sys.modules[name] = mod
    return mod


def thin(f):
    def w(*a, **k):
        return f(*a, **k)

    return w


def figure2(n: int, rounds: int) -> None:
    bare_mod, mods = make_module("bench_bare"), {}
    conditions = {
        "exceptions only (no -c)": "",
        "-c a==99": "a==99",
        "-c a==99,b==7": "a==99,b==7",
        "-c a.real==99 (attribute)": "a.real==99",
    }
    i = 0
    for backend in ("in place", "wrapper"):
        instrument.FORCE_WRAPPER = backend == "wrapper"
        for label, cond in conditions.items():
            mod = mods[f"{backend}, {label}"] = make_module(f"bench_traced{i}", fname=f"add{i}")
            trace(getattr(mod, f"add{i}"), mod, f"add{i}", condition=cond)
            mod.add = getattr(mod, f"add{i}")  # the function itself, or the wrapper
            i += 1
    instrument.FORCE_WRAPPER = False
    fns = {"bare call": bare_mod.add, "thin wrapper": thin(bare_mod.add)}
    fns.update({f"traced {k}": m.add for k, m in mods.items()})
    monitored = None
    if sys.version_info >= (3, 12):
        mon = sys.monitoring
        tool = mon.PROFILER_ID if mon.get_tool(mon.PROFILER_ID) is None else 4
        mon.use_tool_id(tool, "otrace-bench")
        started = make_module("bench_started", fname="adds")

        def start(code, offset):
            return None

        # the floor of a sys.monitoring back end for call traces: a local PY_START event on
        # the one code object, whose callback does nothing (a real one would filter, record)
        mon.register_callback(tool, mon.events.PY_START, start)
        mon.set_local_events(tool, started.adds.__code__, mon.events.PY_START)
        fns["sys.monitoring PY_START (local), empty callback"] = started.adds
        monitored = make_module("bench_monitored", fname="addm")
        watched, seen = {monitored.addm.__code__}, []

        def unwind(code, offset, exc):
            if code in watched:
                seen.append(exc)

        # PY_UNWIND cannot be set per code object (set_local_events refuses it): it is
        # global, and the callback filters by code object.
        mon.register_callback(tool, mon.events.PY_UNWIND, unwind)
        mon.set_events(tool, mon.events.PY_UNWIND)
        fns["sys.monitoring PY_UNWIND (global), no wrapper"] = monitored.addm

    def runner(f):
        return lambda: timeit.timeit(lambda: f(1, 3), number=n) / n

    med = interleave({k: runner(f) for k, f in fns.items()}, rounds)
    unwrap_all()
    if monitored is not None:

        def raising() -> None:
            try:
                monitored.addm(None)
            except TypeError:
                pass

        plain_raise = make_module("bench_raise", fname="addr").addr

        def raising_plain() -> None:
            try:
                plain_raise(None)
            except TypeError:
                pass

        cost = {}
        for label, f in (("with", raising_plain), ("without", None)):
            if label == "without":
                mon.set_events(tool, 0)
                f = raising_plain
            cost[label] = min(timeit.repeat(f, number=n // 10, repeat=3)) / (n // 10)
        mon.register_callback(tool, mon.events.PY_UNWIND, None)
        mon.set_local_events(tool, started.adds.__code__, 0)
        mon.register_callback(tool, mon.events.PY_START, None)
        mon.free_tool_id(tool)
        print(
            f"sys.monitoring PY_UNWIND: an unrelated raise costs {cost['with'] * 1e9:.0f} ns "
            f"with the global event on vs {cost['without'] * 1e9:.0f} ns without "
            f"(every unwinding frame in the process reaches the callback)"
        )
        emit(
            "monitoring_unrelated_raise",
            python=sys.version.split()[0],
            with_ns=cost["with"] * 1e9,
            without_ns=cost["without"] * 1e9,
        )
    bare, thin_cost = med["bare call"], med["thin wrapper"]
    rows = []
    for k, v in med.items():
        added = (v - bare) / (thin_cost - bare)
        rows.append(
            (k, f"{v * 1e9:.0f}", f"{v / bare:.2f}", f"{v / thin_cost:.2f}", f"{added:.2f}")
        )
        if k.startswith(("traced", "sys.")):
            target = (0.8 if "exceptions only" in k else 1.0) if "in place" in k else None
            result(
                f"2-{slug(k)}-added-ratio-py{platform.python_version()}",
                added,
                "<=" if target is not None else "--",
                target if target is not None else "--",
                "ratio",
            )
            emit(
                "traced_nomatch",
                python=sys.version.split()[0],
                case=k,
                added_ratio=added,
                total_ratio=v / thin_cost,
                target=target,
            )
    table(
        f"2. Per call, Python {sys.version.split()[0]} (median of {rounds} rounds of {n})",
        rows,
        ("case", "ns/call", "x bare", "x thin", "added / thin added"),
    )


def work() -> int:
    def fib(k: int) -> int:
        return k if k < 2 else fib(k - 1) + fib(k - 2)

    return fib(14)


def figure3(n: int, rounds: int) -> None:
    mod = make_module("bench_selection", count=50)

    def base() -> float:
        return timeit.timeit(work, number=n) / n

    def otraced() -> float:
        for i in range(50):
            trace(getattr(mod, f"f{i}"), mod, f"f{i}")
        try:
            return timeit.timeit(work, number=n) / n
        finally:
            unwrap_all()

    cases = {"no tracing": base, "otrace: 50 other functions traced": otraced}
    try:
        import hunter

        def hunted() -> float:
            tracer = hunter.trace(
                hunter.Q(module="bench_selection", kind="exception"), action=lambda event: None
            )
            try:
                return timeit.timeit(work, number=max(1, n // 20)) / max(1, n // 20)
            finally:
                tracer.stop()

        cases["hunter (sys.settrace), same selection"] = hunted
    except ImportError:
        print("(python-hunter not installed: pip install hunter, to compare)")
    med = interleave(cases, rounds)
    base_cost = med["no tracing"]
    rows = [(k, f"{v * 1e6:.1f}", f"{base_cost / v:.3f}") for k, v in med.items()]
    table(
        f"3. Untraced code (fib(14)) while others are traced, Python {sys.version.split()[0]}",
        rows,
        ("case", "us/run", "speed vs baseline"),
    )
    for k, v in med.items():
        if k != "no tracing":
            hunter = k.startswith("hunter")
            result(
                f"3-{slug(k)}-speed-py{platform.python_version()}",
                base_cost / v,
                "--" if hunter else ">=",
                "--" if hunter else 0.99,
                "ratio",
            )
        emit("untraced", python=sys.version.split()[0], case=k, ratio=base_cost / v, target=0.99)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    add_sink(lambda text: None)  # announcements are not measured here
    print(machine())
    figure2(100_000 if opts.quick else 300_000, 5 if opts.quick else 9)
    figure3(100 if opts.quick else 400, 5 if opts.quick else 9)


if __name__ == "__main__":
    main()
