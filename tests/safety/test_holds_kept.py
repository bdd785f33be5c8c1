"""Released holds stay as ordinary contexts; cancelled ones are evicted like any other."""

from __future__ import annotations

import asyncio
import importlib

import pytest

from otrace import holds, tracing
from tests.rt import PARAMS, STORE


@pytest.fixture
def prog():
    from tests.safety import prog as module

    return importlib.reload(module)


def _holds_in_recent() -> list:
    out = []
    for by_label in STORE.recent.get("holds", {}).values():
        for by_time in by_label.values():
            out.extend(by_time.values())
    return out


def test_cancelled_holds_do_not_leak(prog):
    PARAMS.set("max_recent", 3)
    tracing.trace(prog.handle, prog, "handle", condition="call", action="hold")

    async def main():
        for i in range(10):
            task = asyncio.ensure_future(prog.handle(i))
            for _ in range(100):  # until the task waits on its hold
                await asyncio.sleep(0)
                if holds.pending():
                    break
            assert holds.pending()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    kept = _holds_in_recent()
    assert not holds.pending()
    assert len(kept) <= 3, f"{len(kept)} cancelled holds kept with max_recent 3"
    assert all(c.trc["released"] == "cancelled" for c in kept)
    assert len(STORE.all) <= 3


def test_a_resumed_hold_stays_in_recent_with_its_reason(prog):
    tracing.trace(prog.handle, prog, "handle", condition="call", action="hold")
    box: dict = {}

    async def main():
        task = asyncio.ensure_future(prog.handle(21))
        for _ in range(100):
            await asyncio.sleep(0)
            if holds.pending():
                break
        (ctx,) = holds.pending()
        box["ctx"] = ctx
        assert holds.resume(ctx)
        box["result"] = await asyncio.wait_for(task, 5)

    asyncio.run(main())
    ctx = box["ctx"]
    assert box["result"] == 42
    assert _holds_in_recent() == [ctx], "a resumed hold vanished from /osh/recent"
    assert ctx.trc["released"] == "resumed" and ctx.live is None
