"""Figures 2 and 3: what tracing costs per call, side by side with the alternatives.

    python benchmarks/trace_overhead.py [--quick]      (any Python >= 3.11; run with 3.12
                                                       and 3.13 too: run_all.py does)

2. A traced function whose condition does not match vs the bare call and the thinnest
   pass-through wrapper ``def w(*a, **k): return f(*a, **k)``.  Target: the traced call's
   *added* cost within 1.5x of the thin wrapper's, ``(traced - bare) <= 1.5 (thin - bare)``.
   On 3.12+ also: an exceptions-only observation with no wrapper at all, through
   ``sys.monitoring`` PY_UNWIND events set locally on the one code object.
3. Untraced code while 50 other functions are traced (exceptions only) vs no tracing at all;
   and the same selection made with python-hunter (a ``sys.settrace`` tracer), if installed.

Rounds alternate the cases; each figure is the median of the rounds.
"""

from __future__ import annotations

import argparse
import sys
import timeit
import types

from _common import emit, interleave, machine, table

from otrace.log import add_sink
from otrace.tracing import trace, unwrap_all


def make_module(name: str, count: int = 1, fname: str = "add") -> types.ModuleType:
    """A module with ``fname(a, b=2)`` and ``f0..f{count-1}``.  Trace keys are bare names,
    so functions traced at the same time need distinct names."""
    mod = types.ModuleType(name)
    src = f"def {fname}(a, b=2):\n    return a + b\n"
    src += "".join(f"def f{i}(x):\n    return x\n" for i in range(count))
    exec(compile(src, f"<{name}>", "exec"), mod.__dict__)
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
    for i, (label, cond) in enumerate(conditions.items()):
        mod = mods[label] = make_module(f"bench_traced{i}", fname=f"add{i}")
        mod.add = getattr(mod, f"add{i}")
        trace(mod.add, mod, f"add{i}", condition=cond)
        mod.add = getattr(mod, f"add{i}")  # the wrapper
    fns = {"bare call": bare_mod.add, "thin wrapper": thin(bare_mod.add)}
    fns.update({f"traced, {k}": m.add for k, m in mods.items()})
    monitored = None
    if sys.version_info >= (3, 12):
        mon = sys.monitoring
        tool = mon.PROFILER_ID if mon.get_tool(mon.PROFILER_ID) is None else 4
        mon.use_tool_id(tool, "otrace-bench")
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
            emit(
                "traced_nomatch",
                python=sys.version.split()[0],
                case=k,
                added_ratio=added,
                total_ratio=v / thin_cost,
                target=1.5,
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
