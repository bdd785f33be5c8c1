"""Pickle store speed: what the traced thread pays, contexts written per second, and
listing a large file.

    python benchmarks/pickle_store.py [COUNT]      (default 100000; run from the repo root)

1. The traced thread's cost, side by side in one run (rounds alternate, medians): an
   exception context of a 20-frame stack recorded without ``pickle_file`` and with it, in
   wall time and in the traced thread's own CPU time, with the file in two rhythms:

   * *the writer keeps up*: the loop pauses for 5 ms every 10 contexts, with and without
     the file, and with the file waits until the writer is done (``flush``, usually at
     once), as in a server whose exceptions come now and then.  The file's share of the
     traced thread's CPU is then the freeze and the queue -- issue 19's target, <= 60 us;
   * *tight loop*: exceptions as fast as the program can raise them; the writer, sharing the
     GIL, falls behind and its queue grows (up to its bound, then contexts are dropped).
     Every queued snapshot keeps its frames alive, so the program's own garbage collections
     scan a growing backlog: the share is printed with the collections' part (timed with
     ``gc.callbacks``) and, for comparison, with the collector off.  Each timed loop starts
     with the queue empty (the writer is flushed between the wall-clock loop and the CPU
     one), as ``recording.py``'s do: a burst from a quiet start.  *Tight loop, queue full*
     starts each timed loop with the queue at its bound instead (an untimed loop fills it):
     most contexts are then dropped, which costs almost nothing -- the state of a burst
     that lasts.  The contexts frozen and dropped per timed CPU loop are printed.

   Also the CPU time ``submit`` takes on the traced thread (the freeze), collections that
   happen to start inside it left out, timed in the loops without pauses (the clock
   readings around it are left out of the rhythm where the writer keeps up).
2. Contexts written per second: while the program raises in that loop (submit to the last
   commit), and by the writer alone from a backlog of those exception contexts.
   (The loops run on a thread of their own: contexts capture the benchmark's 20 frames, not
   its tables of results.)
3. Writing and listing COUNT small call-trace contexts spread over 50 names and two kinds.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine, on_thread, result  # noqa: E402

from otrace.contexts import capture, sqlite, writer_thread  # noqa: E402
from otrace.contexts.record import TraceContext  # noqa: E402
from otrace.contexts.sqlite import PickleWriter, open_pickled  # noqa: E402
from otrace.log import add_sink  # noqa: E402
from otrace.runtime import default  # noqa: E402
from otrace.tracing import trace, unwrap_all  # noqa: E402

SRC = """
class Order:
    def __init__(self, n):
        self.n = n
        self.lines = [("apple", 2), ("pear", n % 7)]

def fail(order, qty):
    raise ValueError(qty)

def deep(k, f, *args):
    if k:
        return deep(k - 1, f, *args)
    return f(*args)
"""


def module(name: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    exec(compile(SRC, f"<{name}>", "exec"), mod.__dict__)
    sys.modules[name] = mod
    return mod


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


PAUSE = 0.005  # seconds, every 10 contexts, in the rhythm where the writer keeps up
MADE: list[TraceContext] = []  # a global: a closure's list would be captured with every context


def grab(order: Order, qty: int) -> None:
    """Raise, and capture the exception as a context (for the writer's backlog)."""
    try:
        raise ValueError(qty)
    except ValueError as exc:
        values, trc = capture.capture_exception(exc, exc.__traceback__, sys._getframe(1))
        MADE.append(TraceContext("exceptions", "fail", "ValueError", values, trc))


def traced_thread(tmp: str, n: int, rounds: int) -> None:
    """Figures 1 and 2: the traced thread with and without pickle_file, and the writer."""
    rt = default()
    params = rt.params
    add_sink(lambda text: None)
    params.set("trace_handled", True)
    base, mod = module("bench_pickle_base"), module("bench_pickle")
    order = mod.Order(3)
    trace(mod.fail, mod, "fail")
    sqlite.install()
    # Garbage collections that run on the traced thread (its CPU clock): a total, and the
    # part of it that ran inside submit (an allocation of the freeze may start one).
    in_gc = [0.0, 0.0]  # start of the current one, total seconds

    def gc_timer(phase, info):
        if threading.current_thread().name != "bench":
            return
        if phase == "start":
            in_gc[0] = time.thread_time()
        else:
            in_gc[1] += time.thread_time() - in_gc[0]

    gc.callbacks.append(gc_timer)
    # what the traced thread spends in submit (the freeze and the queue) minus collections,
    # for the contexts it freezes (a dropped one costs next to nothing: left out)
    spent = [0.0, 0]
    submit = writer_thread.BatchWriter.submit
    freeze_context = writer_thread.freeze_context
    frozen = [0]

    def counted_freeze(*args):
        frozen[0] += 1
        return freeze_context(*args)

    def timed_submit(self, ctx):
        f0, g0, t0 = frozen[0], in_gc[1], time.thread_time()
        submit(self, ctx)
        if frozen[0] != f0:
            spent[0] += time.thread_time() - t0 - (in_gc[1] - g0)
            spent[1] += 1

    def timing(on: bool) -> None:
        # (off in the rhythm where the writer keeps up: its two clock readings, about 1.6 us
        # a context here, would be counted in the file's share)
        writer_thread.freeze_context = counted_freeze if on else freeze_context  # type: ignore[assignment]
        writer_thread.BatchWriter.submit = timed_submit if on else submit  # type: ignore[method-assign]

    def loop(f, clock, pace, count=None):
        w = sqlite.writer()
        t0 = clock()
        for i in range(count or n):
            try:
                mod.deep(19, f, order, 5)
            except ValueError:
                pass
            if pace and i % 10 == 9:
                # a pause every 10 contexts, the same with and without the file (a thread
                # that slept starts again with cold caches); the writer uses it to catch up
                time.sleep(PAUSE)
                if w is not None:
                    assert w.flush(60)
        return (clock() - t0) / (count or n)

    rates: list[float] = []
    paced_base = "exception context, paused"

    def case(f, pickle, collect=True, pace=False, full=False):
        def go():
            if pickle:
                params.set("pickle_file", str(Path(tmp) / "traced.db"))
            if not collect:
                gc.disable()
            timing(not pace)
            w = sqlite.writer()

            def start() -> None:
                # every timed loop starts from the same queue: empty, or at its bound
                if w is not None:
                    assert w.flush(600)
                    if full:
                        fill = getattr(writer_thread, "QUEUE_SIZE", 1000) * 3 // 2
                        loop(f, time.perf_counter, False, fill)

            try:
                start()
                t0 = time.perf_counter()
                wall = loop(f, time.perf_counter, pace)
                start()
                before = w.stats() if w is not None else None
                in_gc[1] = 0.0
                cpu = loop(f, time.thread_time, pace)
                collected = in_gc[1] / n
                if w is not None and before is not None:
                    after = w.stats()
                    dropped = after["dropped"] - before["dropped"]
                    fates[name_of[id(go)]].append(dropped)
                    assert w.flush(600)
                    if collect and not pace and not full:
                        rates.append(after["written"] / (time.perf_counter() - t0))
                return wall, cpu, collected
            finally:
                gc.enable()
                params.set("pickle_file", "")

        return go

    paced, tight = "pickle_file, writer keeps up", "pickle_file, tight loop"
    full = "tight loop, queue full"
    cases = {
        "untraced raise": case(base.fail, False),
        "exception context": case(mod.fail, False),
        paced_base: case(mod.fail, False, pace=True),
        paced: case(mod.fail, True, pace=True),
        tight: case(mod.fail, True),
        full: case(mod.fail, True, full=True),
        "tight loop, collector off": case(mod.fail, True, False),
    }
    name_of = {id(go): name for name, go in cases.items()}
    # contexts dropped in each timed CPU loop (queue full), per case with the file
    fates: dict[str, list[int]] = {name: [] for name in cases}
    seen: dict[str, list[tuple[float, float, float]]] = {k: [] for k in cases}
    for r in range(rounds):
        for name in list(cases) if r % 2 == 0 else list(reversed(cases)):
            seen[name].append(on_thread(cases[name]))
    timing(False)
    gc.callbacks.remove(gc_timer)
    wall = {k: statistics.median(w for w, _, _ in v) for k, v in seen.items()}
    cpu = {k: statistics.median(c for _, c, _ in v) for k, v in seen.items()}
    collecting = {k: statistics.median(g for _, _, g in v) for k, v in seen.items()}
    freeze = spent[0] / max(spent[1], 1) * 1e6
    b, ctx = "untraced raise", "exception context"
    print(f"\n== 1. The traced thread, 20-frame exception contexts ({rounds} rounds of {n}; us)")
    print(
        f"{'case':30s} {'per call':>9s} {'per context':>12s} {'per context, CPU':>17s} "
        f"{'of it in gc':>12s} {'file share, CPU':>16s}"
    )
    for k in cases:
        versus = paced_base if k == paced else ctx
        share = f"{(cpu[k] - cpu[versus]) * 1e6:16.1f}" if "pickle" in k or "tight" in k else ""
        print(
            f"{k:30s} {wall[k] * 1e6:9.1f} {(wall[k] - wall[b]) * 1e6:12.1f} "
            f"{(cpu[k] - cpu[b]) * 1e6:17.1f} {collecting[k] * 1e6:12.1f} {share}"
        )
    share_paced = (cpu[paced] - cpu[paced_base]) * 1e6
    share_tight = (cpu[tight] - cpu[ctx]) * 1e6
    gc_tight = (collecting[tight] - collecting[ctx]) * 1e6
    share_full = (cpu[full] - cpu[ctx]) * 1e6
    print(
        f"the file's share of the traced thread's CPU per context ('file share'): the writer "
        f"keeping up (a pause every 10) {share_paced:.1f} us; in a tight loop from an empty "
        f"queue {share_tight:.1f} us, of which {gc_tight:.1f} us garbage collection of the "
        f"growing backlog; in a tight loop with the queue full {share_full:.1f} us"
    )
    bound = getattr(writer_thread, "QUEUE_SIZE", 10_000)
    fate = ", ".join(f"{k} {statistics.median(v):.0f}" for k, v in fates.items() if v)
    print(
        f"  in submit, collections left out (the freeze, contexts frozen only): {freeze:.1f} us "
        f"(target <= 60); dropped of the {n} contexts of a timed CPU loop (queue bound "
        f"{bound}; medians): {fate}"
    )
    result("pickle-traced-thread-share-writer-keeps-up-cpu-us", share_paced, "<=", 60, "us")
    result("pickle-traced-thread-share-tight-loop-cpu-us", share_tight, "--", "--", "us")
    result("pickle-tight-loop-gc-cpu-us", gc_tight, "--", "--", "us")
    result("pickle-traced-thread-share-queue-full-cpu-us", share_full, "--", "--", "us")
    result("pickle-freeze-submit-us", freeze, "<=", 60, "us")
    print(
        f"contexts written per second while the program raises:     "
        f"{statistics.median(rates):8.0f} contexts/s (submit to the last commit)"
    )

    # the writer alone, from a backlog of such contexts
    made = MADE
    del made[:]

    def fill():
        for _ in range(n * 2):
            mod.deep(19, grab, order, 5)

    on_thread(fill)
    writer = PickleWriter(Path(tmp) / "backlog.db", queue_size=len(made) + 10)
    t0 = time.perf_counter()
    for ctx in made:
        writer.submit(ctx)
    writer.flush(600)
    t1 = time.perf_counter()
    stats = writer.stats()
    writer.close()
    backlog = len(made)
    del made[:]
    print(
        f"contexts written per second, writer alone (backlog of {backlog}): "
        f"{stats['written'] / (t1 - t0):8.0f} contexts/s"
    )
    unwrap_all()
    sqlite.uninstall()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        print(machine())
        traced_thread(tmp, 300 if count <= 10_000 else 1000, 5)
        print(f"\n== 3. {count} small call-trace contexts")
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
