"""Pickle store speed: contexts written per second, and listing a large file.

    python benchmarks/pickle_store.py [COUNT]      (default 100000; run from the repo root)

Prints numbers; asserts nothing.  Contexts look like small call traces (a few arguments,
a nested dict, a stack text) spread over 50 names and two kinds.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from otrace.contexts.record import TraceContext  # noqa: E402
from otrace.contexts.sqlite import PickleWriter, open_pickled  # noqa: E402


class Order:
    def __init__(self, n: int) -> None:
        self.n = n
        self.lines = [("apple", 2), ("pear", n % 7)]


def make(i: int) -> TraceContext:
    kind = "traces" if i % 4 else "exceptions"
    return TraceContext(
        kind,
        f"Shop{i % 50}.sell",
        "call",
        {
            "self": Order(i),
            "qty": i % 9,
            "note": "x" * 40,
            "opts": {"fast": True, "tags": ["a", "b", "c"]},
        },
        {"stack": "  File 'shop.py', line 10, in sell\n" * 5},
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        contexts = [make(i) for i in range(count)]
        writer = PickleWriter(path, queue_size=count + 10)
        t0 = time.perf_counter()
        for ctx in contexts:
            writer.submit(ctx)
        t1 = time.perf_counter()
        writer.flush(600)
        t2 = time.perf_counter()
        stats = writer.stats()
        writer.close()
        print(
            f"contexts: {count}, written {stats['written']}, dropped {stats['dropped']}, "
            f"failed {stats['failed']}; file {os.path.getsize(path) / 1e6:.1f} MB"
        )
        print(f"submit (traced thread):   {(t1 - t0) / count * 1e6:8.1f} us per context")
        print(
            f"written per second:       {stats['written'] / (t2 - t0):8.0f} contexts/s "
            f"(submit to last commit)"
        )

        t0 = time.perf_counter()
        tree = open_pickled(path)
        t1 = time.perf_counter()
        top = {k: list(tree[k]) for k in tree}
        t2 = time.perf_counter()
        total = 0
        for kind in tree:
            for name in tree[kind]:
                for ctxid in tree[kind][name]:
                    total += len(tree[kind][name][ctxid])
        t3 = time.perf_counter()
        kind = next(iter(top))
        name = top[kind][0]
        ctxid = next(iter(tree[kind][name]))
        label = next(iter(tree[kind][name][ctxid]))
        ctx = tree[kind][name][ctxid][label][":"]
        t4 = time.perf_counter()
        print(f"open (checks format):     {(t1 - t0) * 1e3:8.1f} ms")
        print(f"list kinds and names:     {(t2 - t1) * 1e3:8.1f} ms")
        print(f"list every leaf ({total}): {(t3 - t2) * 1e3:8.1f} ms")
        print(f"load one context:         {(t4 - t3) * 1e3:8.1f} ms  ({ctx.id})")
        tree.close()


if __name__ == "__main__":
    main()
