"""Per-call cost of a traced function whose condition does not match, side by side with a
bare call and a thin ``def w(*a, **k): return f(*a, **k)`` wrapper.

Run from the repository root: ``python benchmarks/trace_overhead.py``.  Not a test.
"""

from __future__ import annotations

import sys
import timeit
import types

sys.path.insert(0, ".")

from otrace.tracing import trace, unwrap_all  # noqa: E402

N = 300_000


def make_module() -> types.ModuleType:
    mod = types.ModuleType("bench_target")

    def add(a, b=2):
        return a + b

    add.__module__ = mod.__name__
    mod.add = add
    sys.modules[mod.__name__] = mod
    return mod


def thin(f):
    def w(*a, **k):
        return f(*a, **k)

    return w


def per_call(fn) -> float:
    return min(timeit.repeat(lambda: fn(1, 3), number=N, repeat=5)) / N


def main() -> None:
    mod = make_module()
    bare = mod.add
    rows = [("bare call", per_call(bare)), ("thin wrapper", per_call(thin(bare)))]
    for label, condition in [
        ("traced, exceptions only (no -c)", ""),
        ("traced, -c a==99 (no match)", "a==99"),
        ("traced, -c a==99,b==7 (no match)", "a==99,b==7"),
        ("traced, -c self.x==1 style (attr, slow path)", "a.real==99"),
    ]:
        trace(mod.add, mod, "add", condition=condition)
        rows.append((label, per_call(mod.add)))
        unwrap_all()
    base, thin_cost = rows[0][1], rows[1][1]
    print(f"{'case':48} {'ns/call':>8} {'x bare':>7} {'x thin':>7}")
    for label, cost in rows:
        print(f"{label:48} {cost * 1e9:8.0f} {cost / base:7.2f} {cost / thin_cost:7.2f}")


if __name__ == "__main__":
    main()
