"""Every kind of callable behaves exactly the same traced and untraced."""

from __future__ import annotations

import asyncio
import inspect
import traceback

import pytest

from otrace.contexts.frames import traceback_frames
from otrace.errors import TraceError
from otrace.tracing import trace, traces, untrace, untrace_all, wrapped
from tests.rt import PARAMS, STORE

CONDITIONS = ["", "all", "return", "a==1"]


def outcome(fn, *args, **kwargs):
    try:
        return ("ok", fn(*args, **kwargs))
    except Exception as exc:
        return ("raised", type(exc), str(exc))


def drive_generator(gen):
    log = [next(gen), gen.send("x"), gen.send(None)]
    try:
        gen.send("stop")
    except StopIteration as stop:
        log.append(("stop", stop.value))
    return log


@pytest.mark.parametrize("condition", CONDITIONS)
def test_plain_function_and_metadata(sample, condition, backend):
    original = sample.plain
    before = [outcome(sample.plain, 1), outcome(sample.plain, 1, 5), outcome(sample.plain, "a")]
    trace(sample.plain, sample, "plain", condition=condition)
    w = sample.plain
    if backend == "wrapper":
        assert w is not original and w._otrace_orig_function is original
        assert w.__wrapped__ is original
    else:  # the program keeps its function object
        assert w is original and not hasattr(w, "__wrapped__")
    for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
        assert getattr(w, attr) == getattr(original, attr)
    assert inspect.signature(w) == inspect.signature(original)
    after = [outcome(sample.plain, 1), outcome(sample.plain, 1, 5), outcome(sample.plain, "a")]
    assert before == after
    untrace("plain")
    assert sample.plain is original


@pytest.mark.parametrize("condition", CONDITIONS)
def test_methods_of_every_flavour(sample, condition):
    Cart = sample.Cart
    raw = dict(vars(Cart))

    def scenario():
        c = Cart.make("ann")
        out = [c.add_item("a"), c.add_item("b", 2), Cart.double(4), c.double(5), c.count]
        c.count = 1
        out += [c.count, c.items, c.call_private(), c.inherited(7), repr(c)]
        return out

    before = scenario()
    trace(Cart)
    assert traces()[0].render() == "Cart."
    spec = trace(Cart.inherited, Cart, "inherited", condition=condition)
    assert spec.key == "Base.inherited" and spec.warnings
    assert isinstance(vars(Cart)["make"], classmethod) and isinstance(
        vars(Cart)["double"], staticmethod
    )
    assert isinstance(vars(Cart)["count"], property)
    assert "__repr__" not in wrapped() and "Cart.__repr__" not in wrapped()
    assert scenario() == before
    untrace(Cart)
    untrace("Base.inherited")
    assert dict(vars(Cart)) == raw
    assert "_otrace_class_trace" not in vars(Cart)


@pytest.mark.parametrize("condition", CONDITIONS)
def test_generator_semantics(sample, condition):
    c = sample.Cart("ann")
    before = drive_generator(c.walk(5))
    closed_before = c.walk(3)
    next(closed_before)
    closed_before.close()
    thrown_before = c.walk(3)
    next(thrown_before)
    with pytest.raises(ValueError):
        thrown_before.throw(ValueError("in"))
    trace(sample.Cart.walk, sample.Cart, "walk", condition=condition)
    assert inspect.isgeneratorfunction(sample.Cart.walk)
    assert drive_generator(c.walk(5)) == before
    assert list(c.walk(3)) == [0, 1, 2]
    g = c.walk(3)
    next(g)
    g.close()
    assert inspect.getgeneratorstate(g) == "GEN_CLOSED"
    g = c.walk(3)
    next(g)
    with pytest.raises(ValueError, match="in"):
        g.throw(ValueError("in"))
    if condition == "":
        assert list(STORE.recent["exceptions"]["Cart.walk"]) == ["ex-ValueError"]


def test_generator_return_value_is_traced(sample):
    trace(sample.Cart.walk, sample.Cart, "walk", condition="return=='stopped'")
    c = sample.Cart("ann")
    drive_generator(c.walk(5))
    list(c.walk(2))
    (ctx,) = STORE.recent["traces"]["Cart.walk"]["tr-return==stopped"].values()
    assert ctx.trc["return_value"] == "stopped"


@pytest.mark.parametrize("condition", CONDITIONS)
async def test_async_def_semantics(sample, condition):
    c = sample.Cart("ann")
    trace(sample.Cart.fetch, sample.Cart, "fetch", condition=condition)
    assert inspect.iscoroutinefunction(sample.Cart.fetch)
    assert await c.fetch(3) == 6
    results = await asyncio.gather(*(c.fetch(i, 0.001) for i in range(20)))
    assert results == [2 * i for i in range(20)]
    with pytest.raises(ValueError, match="no value"):
        await c.fetch(None)
    assert list(STORE.recent["exceptions"]["Cart.fetch"]) == ["ex-ValueError"]
    task = asyncio.ensure_future(c.fetch(1, 10))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(STORE.recent["exceptions"]["Cart.fetch"]["ex-ValueError"]) == 1  # cancel not traced


async def test_async_def_return_condition_and_task_name(sample):
    trace(sample.Cart.fetch, sample.Cart, "fetch", condition="return==8")
    c = sample.Cart("ann")
    await asyncio.create_task(c.fetch(4), name="req-4")
    await c.fetch(1)
    (ctx,) = STORE.recent["traces"]["Cart.fetch"]["tr-return==8"].values()
    assert ctx["value"] == 4 and ctx.trc["return_value"] == 8 and ctx.trc["task"] == "req-4"


@pytest.mark.parametrize("condition", CONDITIONS)
async def test_async_generator_semantics(sample, condition):
    c = sample.Cart("ann")

    async def drive():
        out = [x async for x in c.stream(3)]
        g = c.stream(5)
        out.append(await g.__anext__())
        out.append(await g.asend("hi"))
        try:
            await g.asend("boom")
        except RuntimeError as exc:
            out.append(str(exc))
        g = c.stream(5)
        await g.__anext__()
        await g.aclose()
        g = c.stream(5)
        await g.__anext__()
        try:
            await g.athrow(KeyError("k"))
        except KeyError as exc:
            out.append(repr(exc))
        return out

    before = await drive()
    PARAMS.set("trace_handled", True)  # drive() catches them: recorded only with trace_handled
    trace(sample.Cart.stream, sample.Cart, "stream", condition=condition)
    assert inspect.isasyncgenfunction(sample.Cart.stream)
    assert await drive() == before
    assert sorted(STORE.recent["exceptions"]["Cart.stream"]) == ["ex-KeyError", "ex-RuntimeError"]


def test_decorated_and_varargs(sample):
    before = [sample.decorated(5), sample.decorated(5, y=2), sample.varargs(1, 2, k=3)]
    trace(sample.decorated, sample, "decorated", condition="y==2")
    trace(sample.varargs, sample, "varargs", condition="call")
    assert sample.decorated.__doc__ == "Decorated doc."
    assert str(inspect.signature(sample.decorated)) == "(x, y=1)"
    assert [sample.decorated(5), sample.decorated(5, y=2), sample.varargs(1, 2, k=3)] == before
    assert list(STORE.recent["traces"]["decorated"]) == ["tr-y==2"]


def test_builtins_and_bad_targets(sample):
    import math

    with pytest.raises(TraceError, match="builtin"):
        trace(math.sqrt, math, "sqrt")
    with pytest.raises(TraceError, match="builtin"):
        trace(dict.get, dict, "get")
    with pytest.raises(TraceError):
        trace(sample.plain, sample, "plain", action="fly")
    with pytest.raises(TraceError, match="async def"):
        trace(sample.plain, sample, "plain", action="hold", condition="call")
    assert sample.plain.__module__ == sample.__name__ and not hasattr(
        sample.plain, "_otrace_orig_function"
    )


def test_module_trace_and_trace_all(sample):
    spec = trace(sample)
    assert spec.key == "tests.tracing.sample.*"
    assert "helper" in wrapped() and "Cart.add_item" in wrapped()
    with pytest.raises(ZeroDivisionError):
        sample.helper(0)
    assert "helper" in STORE.recent["exceptions"]
    untrace_all()
    assert sample.plain(1) == 3 and "plain" in wrapped()  # pass-through
    trace("*", condition="call")
    sample.plain(1)
    assert list(STORE.recent["traces"]["plain"]) == ["tr-call"]
    untrace(sample)
    assert not hasattr(sample.plain, "_otrace_orig_function") and "plain" not in wrapped()


def test_exception_traceback_hides_wrapper_frames(sample):
    def frames_of(exc):
        return [f.f_code.co_name for f, _ in traceback_frames(exc.__traceback__)]

    with pytest.raises(ZeroDivisionError) as plain_info:
        sample.Cart("a").boom(0)
    trace(sample.Cart)
    trace(sample.helper, sample, "helper")
    with pytest.raises(ZeroDivisionError) as traced_info:
        sample.Cart("a").boom(0)
    assert frames_of(traced_info.value) == frames_of(plain_info.value)
    assert "wrapper" in "".join(
        traceback.format_tb(traced_info.value.__traceback__)
    )  # CPython keeps it
    ctxs = STORE.recent["exceptions"]
    assert set(ctxs) == {"helper", "Cart.boom"}  # one per traced function passed through
    for name in ("helper", "Cart.boom"):
        (ctx,) = ctxs[name]["ex-ZeroDivisionError"].values()
        assert "-->wrapper-->" not in ctx.trc["where"]
        assert all(f[2] != "wrapper" for f in ctx.trc["framestack"])
        assert ctx.trc["where"].endswith(
            "test_exception_traceback_hides_wrapper_frames-->boom-->helper"
        )
        assert ctx["z"] == 42 and ctx["d"] == 0
