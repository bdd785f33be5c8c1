"""The original's module-level API (reference §13) through ``import otrace``."""

from __future__ import annotations

import asyncio

import pytest

import otrace
from tests.rt import PARAMS, STORE


def test_the_original_demo_imports():
    from otrace import OShell, traceassert  # the first line of the original's Tornado demo

    assert OShell is otrace.oshell.OShell
    assert traceassert(True) is None
    names = (
        "traceassert tag untag get_tag set_tag set_trace encrypt_password verify_password main "
        "schedule_callback OShell OTrace OTraceException TraceCallback DefaultCallback"
    ).split()
    missing = [n for n in names if not hasattr(otrace, n)]
    assert missing == []
    for n in ("tag", "untag", "get_tag", "set_tag", "traceassert"):
        assert getattr(otrace.OTrace, n) is getattr(otrace, n)


def test_readme_await_traceassert_holds_nothing_when_true():
    async def handler(number):
        await otrace.traceassert(number != "77", label="hold_check", action="hold")
        return number

    assert asyncio.run(handler("4")) == "4"


def test_traceassert_records_an_assert_context(announced):
    PARAMS.set("trace_active", True)

    def respond(value):
        otrace.traceassert(value > 0.001, label="num_check")
        return 1.0 / value

    respond(0.0005)
    ctx = STORE.newest
    assert ctx.kind == "asserts" and ctx.id.startswith("respond:as-num_check:")
    assert ctx["value"] == 0.0005
    assert announced == [ctx.id]


def test_add_trace_with_argmatch_on_a_method(shop, announced):
    name = otrace.OTrace.add_trace(shop.Cart.add_item, argmatch={"name==": "apple"})
    assert name == "Cart.add_item"
    assert otrace.OTrace.add_trace() == ["Cart.add_item"]
    shop.c.add_item("pear")
    assert STORE.newest is None
    shop.c.add_item("apple", qty=3)
    ctx = STORE.newest
    assert ctx.id.startswith("Cart.add_item:tr-name=='apple'") or ctx.id.startswith(
        "Cart.add_item:tr-name==apple"
    ), ctx.id
    assert ctx["qty"] == 3
    otrace.OTrace.remove_trace("Cart.add_item")
    assert otrace.OTrace.add_trace() == []


def test_add_trace_by_name_waits_for_trace_entity(shop):
    assert otrace.OTrace.add_trace("Cart.boom", trace_call=True) == "Cart.boom"
    assert otrace.OTrace.add_trace() == ["Cart.boom"]
    shop.c.boom(2)
    assert STORE.newest is None  # registered, not wrapped yet (as in the original)
    otrace.OTrace.trace_entity(shop.Cart, include=["boom"])
    shop.c.boom(4)
    ctx = STORE.newest
    assert ctx is not None and ctx.id.startswith("Cart.boom:tr-call:"), ctx
    assert ctx["d"] == 4
    otrace.OTrace.trace_entity(shop.Cart, include=["boom"], unwrap=True)
    assert "_otrace_orig_function" not in vars(shop.Cart.boom)


def test_trace_function_exceptions_and_break_count(shop):
    otrace.OTrace.add_trace("helper", break_count=0)
    otrace.OTrace.trace_modulefunction(shop, "helper")
    with pytest.raises(ZeroDivisionError):
        shop.helper(0)
    ctx = STORE.newest
    assert ctx.id.startswith("helper:ex-ZeroDivisionError:")
    assert ctx["z"] == 42


def test_tag_functions(shop, announced):
    cart = shop.Cart("zed")
    trace_id = otrace.tag(cart, "vip")
    assert trace_id.startswith("Cart:tg-vip:") and announced == [trace_id]
    assert otrace.get_tag(cart) == trace_id
    otrace.untag(cart)
    assert otrace.get_tag(cart) is None
    otrace.set_tag(cart, trace_id)
    assert otrace.get_tag(cart) == trace_id
    otrace.set_tag(cart, None)
    assert otrace.get_tag(cart) is None


def test_tracereturn_keeps_the_callers_locals(shop):
    class Pricer:
        def total(self, n):
            subtotal = n * 2
            return otrace.OTrace.tracereturn(subtotal + 1)

    p = Pricer()
    assert p.total(3) == 7
    assert not hasattr(p, "_trace_total_locals")  # tracing inactive: nothing kept
    PARAMS.set("trace_active", True)
    assert p.total(3) == 7
    assert "'subtotal': 6" in p._trace_total_locals


def test_evaluate_in_context(shop):
    otrace.OTrace.add_trace(shop.helper)
    with pytest.raises(ZeroDivisionError):
        shop.helper(0)
    assert otrace.OTrace.evaluate_in_context("z + d") == 42
    trace_id = STORE.newest.id
    assert otrace.OTrace.evaluate_in_context("z * 2", trace_id) == 84
    STORE.clear()
    with pytest.raises(otrace.OTraceError, match="No trace context"):
        otrace.OTrace.evaluate_in_context("z")


def test_monkey_patch_and_unpatch(shop):
    def plain(a, b=2):
        return a * b

    new = otrace.OTrace.monkey_patch(plain, "plain", shop)
    assert new is not None and shop.plain(3, 4) == 12
    lines, start = otrace.OTrace.getsourcelines(shop.plain)
    assert start == 0 and "a * b" in "".join(lines)
    assert otrace.OTrace.monkey_unpatch("plain") is True
    assert shop.plain(3, 4) == 7
    assert otrace.OTrace.monkey_unpatch("plain") is False


def test_setup_callback_handler_receives_trace_lines(shop):
    got = []

    class Collect(otrace.TraceCallback):
        def logmessage(self, log_level, msg, exc_info=None, logtype="", prompt="", plaintext=""):
            got.append((logtype, msg))

    otrace.OTrace.setup(callback_handler=Collect())
    try:
        otrace.OTrace.add_trace(shop.helper)
        with pytest.raises(ZeroDivisionError):
            shop.helper(0)
    finally:
        otrace.OTrace.setup(callback_handler=otrace.DefaultCallback())
    assert got and got[0][0] == "trace" and got[0][1].startswith("helper:ex-ZeroDivisionError:")
    assert otrace.OTrace._sink is None and Collect not in map(
        type, [otrace.OTrace.callback_handler]
    )


def test_schedule_callback_without_and_with_a_loop():
    ran = []
    otrace.schedule_callback(lambda: ran.append("direct"))
    assert ran == ["direct"]

    async def main():
        loop = asyncio.get_running_loop()
        otrace.OTrace.setup(eventloop_callback=loop.call_soon_threadsafe)
        done = asyncio.Event()
        otrace.schedule_callback(lambda: (ran.append("loop"), done.set()))
        await asyncio.wait_for(done.wait(), 5)

    from otrace import holds

    try:
        asyncio.run(main())
    finally:
        holds.set_eventloop_callback(None)
    assert ran == ["direct", "loop"]


def test_otrace_has_no_instances():
    with pytest.raises(otrace.OTraceError):
        otrace.OTrace()


def test_add_trace_of_a_database_key():
    from otrace.tracing import dbkeys

    class Cache:
        def unpack(self):
            return {"total": 3}

    assert otrace.OTrace.add_trace("/carts/ann", access_type="put") == "/carts/ann"
    assert otrace.OTrace.add_trace() == ["/carts/ann"]
    dbkeys.access_hook("get", "/carts/ann", Cache())
    assert STORE.newest is None
    dbkeys.access_hook("put", "/carts/ann", Cache())
    assert STORE.newest.id.startswith("_carts_ann:db-put:")
    otrace.OTrace.remove_trace("/carts/ann")
    assert otrace.OTrace.add_trace() == []
