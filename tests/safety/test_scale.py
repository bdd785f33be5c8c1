"""Holds and /osh/recent at scale: batched resume, the owner index, eviction, listing."""

from __future__ import annotations

import asyncio

from otrace import holds
from otrace.contexts.record import TraceContext
from otrace.runtime import default
from otrace.shell.session import Session
from otrace.tracing import traceassert
from tests.rt import PARAMS, STORE


class Handler:
    def __bool__(self) -> bool:
        return True

    async def get(self, number: int) -> int:
        await traceassert(number != 77, label="held", action="hold")
        return number


async def _execute(handler: Handler, number: int) -> int:
    return await handler.get(number)


def _counted_door(loop: asyncio.AbstractEventLoop, calls: list):
    """The program's door into ``loop``, each call through it appended to ``calls``."""

    def door(fn):
        calls.append(fn)
        loop.call_soon_threadsafe(fn)

    return door


async def _hold_many(count: int) -> tuple[list[Handler], list[asyncio.Task]]:
    handlers = [Handler() for _ in range(count)]
    tasks = [asyncio.ensure_future(_execute(h, 77)) for h in handlers]
    for _ in range(100):  # until every task waits on its hold
        await asyncio.sleep(0)
        if len(holds.pending()) == count:
            break
    assert len(holds.pending()) == count
    return handlers, tasks


def test_release_all_wakes_a_loop_once_through_the_door():
    PARAMS.set("trace_active", True)
    calls: list = []
    box: dict = {}

    async def main():
        holds.set_eventloop_callback(_counted_door(asyncio.get_running_loop(), calls))
        _, tasks = await _hold_many(50)
        # from another thread, as the shell does: one trip through the door for all 50
        box["n"] = await asyncio.to_thread(holds.release_all, "resumed")
        box["results"] = await asyncio.wait_for(asyncio.gather(*tasks), 5)

    try:
        asyncio.run(main())
    finally:
        holds.set_eventloop_callback(None)
    assert box["n"] == 50
    assert box["results"] == [77] * 50
    assert len(calls) == 1, f"{len(calls)} loop callbacks for one release_all"
    assert not holds.pending()


def test_released_on_the_loop_thread_resolves_without_the_door():
    PARAMS.set("trace_active", True)
    calls: list = []

    async def main():
        holds.set_eventloop_callback(calls.append)  # would never run anything
        _, tasks = await _hold_many(3)
        assert holds.release_all("resumed") == 3
        return await asyncio.wait_for(asyncio.gather(*tasks), 5)

    try:
        assert asyncio.run(main()) == [77, 77, 77]
    finally:
        holds.set_eventloop_callback(None)
    assert calls == []


def test_a_handler_finds_its_own_holds():
    PARAMS.set("trace_active", True)

    async def main():
        handlers, tasks = await _hold_many(20)
        mine = holds.held_by(handlers[7])
        assert len(mine) == 1 and mine[0].get("self") is handlers[7]
        assert holds.held_by(object()) == []
        assert holds.resume(mine[0], reason="disconnected")
        assert holds.held_by(handlers[7]) == []
        assert len(holds.pending()) == 19
        holds.release_all("resumed")
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return mine[0]

    ctx = asyncio.run(main())
    assert ctx.trc["released"] == "disconnected"


def test_a_hold_keeps_its_await_chain_not_the_loop():
    PARAMS.set("trace_active", True)

    async def main():
        _, tasks = await _hold_many(1)
        (ctx,) = holds.pending()
        holds.release_all("resumed")
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return ctx

    ctx = asyncio.run(main())
    assert ctx.trc["where"] == "_execute-->get"
    assert [f[2] for f in ctx.trc["framestack"]] == ["_execute", "get"]
    assert ctx["number"] == 77 and ctx["__up"].trc["funcname"] == "_execute"


def test_waiting_holds_are_kept_apart_and_released_ones_evict():
    PARAMS.set("trace_active", True)
    PARAMS.set("max_recent", 5)

    async def main():
        _, tasks = await _hold_many(30)  # all kept although max_recent is 5
        assert len(STORE.all) == 30
        first = holds.pending()[0]
        assert holds.resume(first)  # released: now evictable, as the newest
        assert first.id in STORE.all, "the hold just resumed was evicted at once"
        assert len(STORE.all) == 30
        holds.release_all("resumed")
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return first

    first = asyncio.run(main())
    kept = sorted(STORE.all.values(), key=lambda c: c.created)
    assert len(kept) == 5, f"{len(kept)} released holds kept with max_recent 5"
    assert first not in kept  # released first, so evicted before the later releases
    assert STORE.newest is kept[-1]


def test_ls_of_a_big_recent_directory_shows_the_newest():
    rt = default()
    PARAMS.set("max_recent", 3000)
    PARAMS.set("ls_limit", 100)
    for i in range(2500):
        STORE.add(TraceContext("traces", "Shop.sell", f"call{i}", {"qty": i}, {}))
    s = Session({"__name__": "prog"}, runtime=rt)
    try:
        assert s.params.safe_mode
        r = s.execute("cd /osh/recent/traces/Shop.sell")
        assert not r.err, r.err
        r = s.execute("ls")
        assert "ls: showing the newest 100 of 2500 entries" in r.err
        shown = set(r.out.split())
        assert shown == {f"tr-call{i}" for i in range(2400, 2500)}
        r = s.execute("cd tr-call2499")
        assert not r.err, r.err
        r = s.execute("ls")
        assert not r.err and len(r.out.split()) == 1
        r = s.execute("cd /osh/recent/traces/Shop.sell/tr-call0")
        assert not r.err, r.err  # older entries are still reached by name
    finally:
        s.close()


def test_resume_star_wakes_every_hold_with_one_loop_callback():
    PARAMS.set("trace_active", True)
    calls: list = []
    s = Session({"__name__": "prog"}, runtime=default())

    async def main():
        holds.set_eventloop_callback(_counted_door(asyncio.get_running_loop(), calls))
        _, tasks = await _hold_many(40)
        r = await asyncio.to_thread(s.execute, "resume *")  # the shell's own thread
        results = await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return r, results

    try:
        r, results = asyncio.run(main())
    finally:
        holds.set_eventloop_callback(None)
        s.close()
    assert not r.err, r.err
    assert r.out.count("Resuming Handler.get:hd-held:") == 40
    assert results == [77] * 40
    assert len(calls) == 1


def test_many_released_holds_are_settled_on_their_loop_after_their_handlers():
    """More than SETTLE_LATER holds of one loop: every handler runs before the released
    contexts are settled (HoldReleased sent, the excess over max_recent evicted); then all
    are, on the loop -- and the door is used once."""
    from otrace.events import HoldReleased
    from otrace.holds.table import SETTLE_LATER

    PARAMS.set("trace_active", True)
    PARAMS.set("max_recent", 5)
    count = SETTLE_LATER + 40
    calls: list = []
    released: list = []
    default().events.subscribe(HoldReleased, released.append)

    async def held(number: int, seen: list) -> None:
        await traceassert(number < 0, label="many", action="hold")
        seen.append((number, len(released), len(STORE.all)))

    async def main():
        holds.set_eventloop_callback(_counted_door(asyncio.get_running_loop(), calls))
        seen: list = []
        tasks = [asyncio.ensure_future(held(i, seen)) for i in range(count)]
        for _ in range(100):
            await asyncio.sleep(0)
            if len(holds.pending()) == count:
                break
        assert len(holds.pending()) == count
        n = await asyncio.to_thread(holds.release_all, "resumed")
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        return n, seen

    try:
        n, seen = asyncio.run(main())
    finally:
        holds.set_eventloop_callback(None)
        default().events.unsubscribe(HoldReleased, released.append)
    assert n == count
    assert sorted(number for number, _, _ in seen) == list(range(count))
    assert {(sent, kept) for _, sent, kept in seen} == {(0, count)}, "settled before they ran"
    assert len(released) == count and {e.reason for e in released} == {"resumed"}
    assert len(calls) == 1, f"{len(calls)} trips through the door"
    assert not holds.pending()
    assert len(STORE.all) == 5, f"{len(STORE.all)} contexts kept with max_recent 5"
