"""Actions (break, hold, pdb, tag), counts, and resuming from another thread."""

from __future__ import annotations

import asyncio
import io
import threading
import time

import pytest

from otrace import holds
from otrace.events import DebuggerHandover
from otrace.tracing import get_tag, set_debugger_streams, trace, traceassert, traces, wrapped
from tests.rt import STORE

pytestmark = pytest.mark.timeout(30)


def wait_for(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def test_break_blocks_worker_until_resumed_from_another_thread(sample, announced):
    trace(sample.plain, sample, "plain", condition="call", action="break")
    results = []
    worker = threading.Thread(target=lambda: results.append(sample.plain(9)), name="worker-1")
    worker.start()
    assert wait_for(lambda: holds.pending())
    (ctx,) = holds.pending()
    assert ctx.kind == "breaks" and ctx.id.startswith("plain:br-call:") and ctx.live is not None
    assert ctx.trc["thread"] == "worker-1" and ctx["a"] == 9
    assert wait_for(lambda: f"{ctx.id} a=9, b=2" in announced)  # announced after pending
    time.sleep(0.05)
    assert worker.is_alive() and results == []
    resumer = threading.Thread(target=lambda: results.append(holds.resume(ctx.id)))
    resumer.start()
    resumer.join(5)
    worker.join(5)
    assert sorted(results, key=str) == [11, True]
    assert ctx.trc["released"] == "resumed" and ctx.live is None
    # kept as an ordinary context that says how it ended; nothing waits there any more
    assert STORE.get(ctx.id) is ctx and not holds.resume(ctx.id)


def test_break_on_return_uses_its_own_id(sample):
    trace(sample.plain, sample, "plain", condition="return", action="break")
    worker = threading.Thread(target=sample.plain, args=(1,))
    worker.start()
    assert wait_for(lambda: holds.pending())
    (ctx,) = holds.pending()
    assert ctx.ctxid == "br-return" and ctx.trc["return_value"] == 3
    assert holds.resume(ctx)
    worker.join(5)


def test_release_all_on_shutdown(sample):
    trace(sample.plain, sample, "plain", condition="call", action="break")
    workers = [threading.Thread(target=sample.plain, args=(i,)) for i in range(3)]
    for w in workers:
        w.start()
    assert wait_for(lambda: len(holds.pending()) == 3)
    ctxs = holds.pending()
    assert holds.release_all("shutdown") == 3
    for w in workers:
        w.join(5)
        assert not w.is_alive()
    assert {c.trc["released"] for c in ctxs} == {"shutdown"}


async def test_break_refused_on_event_loop_thread(sample, announced):
    trace(sample.plain, sample, "plain", condition="call", action="break")
    assert sample.plain(1) == 3  # does not block the loop
    assert holds.pending() == []
    (ctx,) = STORE.recent["traces"]["plain"]["tr-call"].values()
    assert any(line.startswith(ctx.id) and "use -a hold" in line for line in announced)
    assert traceassert(False, "x", action="break") is None
    assert "asserts" in STORE.recent


def test_hold_on_async_def_while_loop_serves_others(sample):
    trace(sample.Cart.fetch, sample.Cart, "fetch", condition="value==77", action="hold")
    out: dict = {}

    async def main():
        c = sample.Cart("ann")
        held = asyncio.create_task(c.fetch(77), name="held-request")
        for _ in range(50):
            await asyncio.sleep(0.001)
            if holds.pending():
                break
        (ctx,) = holds.pending()
        out["ctx"] = ctx
        assert ctx.kind == "holds" and ctx.trc["task"] == "held-request"
        others = await asyncio.gather(*(c.fetch(i) for i in range(10)))  # loop keeps serving
        assert others == [2 * i for i in range(10)] and not held.done()
        t = threading.Thread(target=lambda: out.setdefault("resumed", holds.resume(ctx.id)))
        t.start()
        out["result"] = await asyncio.wait_for(held, 5)
        t.join(5)

    asyncio.run(main())
    assert out["result"] == 154 and out["resumed"] is True
    assert out["ctx"].trc["released"] == "resumed" and STORE.get(out["ctx"].id) is out["ctx"]


def test_thousands_of_holds(sample):
    async def main():
        tasks = [asyncio.create_task(sample.held(77)) for _ in range(2000)]
        while len(holds.pending()) < 2000:
            await asyncio.sleep(0.01)
        done = threading.Event()

        def resume_everything():
            for ctx in holds.pending():
                holds.resume(ctx)
            done.set()

        threading.Thread(target=resume_everything).start()
        return await asyncio.wait_for(asyncio.gather(*tasks), 20)

    from tests.rt import PARAMS

    PARAMS.trace_active = True
    assert asyncio.run(main()) == [77] * 2000
    assert holds.pending() == []


async def test_traceassert_hold_true_and_false(sample):
    from tests.rt import PARAMS

    PARAMS.trace_active = True
    assert await sample.held(1) == 1  # true condition: completed awaitable
    task = asyncio.create_task(sample.held(77))
    while not holds.pending():
        await asyncio.sleep(0.001)
    (ctx,) = holds.pending()
    assert ctx.id.startswith("held:hd-hold_check:") and ctx["v"] == 77
    threading.Thread(target=holds.resume, args=(ctx,)).start()
    assert await asyncio.wait_for(task, 5) == 77


async def test_deleting_a_hold_releases_it(sample):
    from tests.rt import PARAMS

    PARAMS.trace_active = True
    task = asyncio.create_task(sample.held(77))
    while not holds.pending():
        await asyncio.sleep(0.001)
    (ctx,) = holds.pending()
    STORE.remove(ctx)
    assert await asyncio.wait_for(task, 5) == 77
    assert ctx.trc["released"] == "deleted"


def test_pdb_action_with_scripted_stdin(sample, runtime, backend):
    events = []

    def on_handover(event: DebuggerHandover) -> None:
        events.append(event.phase)

    runtime.events.subscribe(DebuggerHandover, on_handover)
    out = io.StringIO()
    set_debugger_streams(io.StringIO("p a\np b\ncontinue\n"), out)
    try:
        trace(sample.plain, sample, "plain", condition="a==5", action="pdb")
        results = []
        t = threading.Thread(target=lambda: results.append(sample.plain(5, 6)))
        t.start()
        t.join(10)
        assert results == [11]
    finally:
        runtime.events.unsubscribe(DebuggerHandover, on_handover)
        set_debugger_streams()
    text = out.getvalue()
    # in place, the debugger starts at the function's first line (a wrapper: at its --Call--)
    # (3.13's pdb stops at once, on the def line the hooks sit on)
    first = "plain()\n->" if backend == "inplace" else "--Call--"
    assert "sample.py(" in text and first in text
    assert "(Pdb) 5\n(Pdb) 6\n" in text
    assert events == ["enter", "leave"]


def test_tag_action_tags_self_at_return(sample):
    trace(sample.Cart.add_item, sample.Cart, "add_item", condition="self.owner==zed", action="tag")
    ann, zed = sample.Cart("ann"), sample.Cart("zed")
    ann.add_item("a")
    zed.add_item("b", 4)
    assert get_tag(ann) is None
    tag_id = get_tag(zed)
    assert tag_id.startswith(f"Cart:tg-self.owner==zed;0x{id(zed):x}:")
    ctx = STORE.get(tag_id)
    assert ctx.kind == "tags" and ctx["self"] is zed and ctx["name"] == "b" and ctx["qty"] == 4
    assert "traces" not in STORE.recent


def test_counts(sample, announced):
    spec = trace(sample.plain, sample, "plain", condition="call", count=2)
    assert spec.render() == "-c call -n 2 plain"
    for i in range(5):
        sample.plain(i)
    assert len(STORE.recent["traces"]["plain"]["tr-call"]) == 2
    assert traces() == [] and "plain" in wrapped()  # wrapper / instrumentation stays
    STORE.clear()
    announced.clear()
    spec = trace(sample.plain, sample, "plain", condition="a>=0", count=-3)
    assert spec.render() == "-c a>=0 -n -3 plain"
    for i in range(5):
        sample.plain(i)
    ctxs = list(STORE.recent["traces"]["plain"]["tr-a>=0"].values())
    assert [c["a"] for c in ctxs] == [3, 4]  # skipped matches leave no trace at all
    assert len(announced) == 2 and spec.matches == 5 and spec.traced == 2
    assert traces()[0].render() == "-c a>=0 plain"
