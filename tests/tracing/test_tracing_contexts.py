"""Context contents, traceassert, tags, related tracing, threads, and a tutorial transcript."""

from __future__ import annotations

import re
import threading

import pytest

from otrace.contexts.record import parse_trace_id
from otrace.tracing import get_tag, set_tag, tag, trace, traceassert, traces, untag, untrace
from tests.rt import PARAMS, STORE
from tests.tracing.conftest import original_of

TS = r"\d{6}-\d\d-\d\d-\d\d(\.\d+)?"


def test_call_context_fields(sample, announced):
    trace(sample.Cart.add_item, sample.Cart, "add_item", condition="name==apple,qty>=2")
    c = sample.Cart("ann")
    assert c.add_item("apple", qty=3) == 1
    (ctx,) = STORE.recent["traces"]["Cart.add_item"]["tr-name==apple,qty>=2"].values()
    assert re.fullmatch(r"Cart\.add_item:tr-name==apple,qty>=2:" + TS, ctx.id)
    assert {k for k in ctx if not k.startswith("__")} == {"self", "name", "qty"}
    assert ctx["self"] is c and ctx["name"] == "apple" and ctx["qty"] == 3
    trc = ctx.trc
    assert set(trc) >= {
        "id",
        "thread",
        "context",
        "related",
        "func",
        "stack",
        "return_value",
        "argstr",
        "task",
    }
    assert trc["id"] == ctx.id and trc["context"] == "traces" and trc["related"] == {}
    assert trc["func"] is original_of(sample.Cart.add_item)
    assert trc["thread"] == threading.current_thread().name and trc["task"] is None
    assert trc["return_value"] == 1
    assert "test_call_context_fields" in str(trc["stack"]) and "wrapper" not in str(trc["stack"])
    # the program's __repr__ is not run to record a call: self shows as object.__repr__
    cart = f"<tests.tracing.sample.Cart object at 0x{id(ctx['self']):x}>"
    assert str(trc["argstr"]) == f"self={cart}, name=apple, qty=3"
    assert announced == [f"{ctx.id} self={cart}, name=apple, qty=3"]


def test_deep_copy(sample):
    PARAMS.deep_copy = True
    trace(sample.plain, sample, "plain", condition="call")
    trace(sample.Cart.add_item, sample.Cart, "add_item", condition="call")
    a = [1]
    sample.plain(a, [2])
    a.append(5)
    (ctx,) = STORE.recent["traces"]["plain"]["tr-call"].values()
    assert ctx["a"] == [1]
    c = sample.Cart("ann")
    c.add_item("x")
    (ctx,) = STORE.recent["traces"]["Cart.add_item"]["tr-call"].values()
    assert ctx["self"] is c and "self_copy" not in ctx  # Cart has no __deepcopy__


def test_exception_context(sample, announced):
    trace(sample.Cart.boom, sample.Cart, "boom")
    with pytest.raises(ZeroDivisionError):
        sample.Cart("ann").boom(0)
    (ctx,) = STORE.recent["exceptions"]["Cart.boom"]["ex-ZeroDivisionError"].values()
    assert announced == [ctx.id]
    assert ctx["d"] == 0 and ctx["z"] == 42  # rooted at the raising frame (helper)
    up = ctx["__up"]
    assert up["d"] == 0 and isinstance(up["self"], sample.Cart) and up["__down"] is ctx
    trc = ctx.trc
    assert trc["funcname"] == "helper" and trc["where"].endswith("-->boom-->helper")
    assert trc["argvalues"] == (["d"], None, None)
    assert "ZeroDivisionError" in str(trc["exc_stack"]) and "z = 42" in str(trc["exc_context"])
    assert trc["framestack"][-1][2] == "helper"


def test_recursion_gives_one_exception_context_per_traced_call(sample):
    trace(sample.recurse, sample, "recurse")
    with pytest.raises(KeyError):
        sample.recurse(3)
    assert len(STORE.recent["exceptions"]["recurse"]["ex-KeyError"]) == 4


def test_traceassert_contexts(sample, announced):
    with pytest.raises(AssertionError, match="positive"):
        sample.checker(-1)  # tracing inactive: behaves like assert
    assert traceassert(True, "x") is None
    PARAMS.trace_active = True
    assert sample.checker(-1) == -1
    (ctx,) = STORE.recent["asserts"]["checker"]["as-positive"].values()
    assert announced == [ctx.id]
    assert ctx["v"] == -1 and ctx["local_note"] == "checking"
    assert str(ctx.trc["argstr"]) == "(v=-1)" and ctx.trc["frame"][3] is None
    up = ctx["__up"]
    assert set(up) == {"__trc", "__down"} or set(up) == {"__trc", "__down", "__up"}
    assert sample.Cart("ann").check(-5) == -5
    (mctx,) = STORE.recent["asserts"]["Cart.check"]["as-positive"].values()
    assert mctx["number"] == -5
    PARAMS.assert_context = 3
    sample.checker(-2)
    newest = STORE.newest
    assert newest.trc["frame"][3] and "test_traceassert_contexts" in newest["__up"].trc["funcname"]
    assert "sample" in newest["__up"]


def test_traceassert_break_in_thread(sample):
    from otrace import holds

    PARAMS.trace_active = True

    def work():
        traceassert(False, "stop", action="break")

    t = threading.Thread(target=work)
    t.start()
    for _ in range(500):
        if holds.pending():
            break
        t.join(0.01)
    (ctx,) = holds.pending()
    assert ctx.id.startswith("work:br-stop:")
    holds.resume(ctx)
    t.join(5)
    assert not t.is_alive()


def test_tags_api(sample, announced):
    c = sample.Cart("ann")
    tid = tag(c)
    assert re.fullmatch(rf"Cart:tg-0x{id(c):x}:" + TS, tid) and get_tag(c) == tid
    assert announced == [tid] and STORE.get(tid)["self"] is c
    assert STORE.saved == {}
    PARAMS.save_tags = True
    t2 = tag(c, "time", note="hi")
    assert STORE.is_saved(STORE.get(t2)) and STORE.get(t2)["note"] == "hi"
    kind, name, ctxid, ts = parse_trace_id(tag(c, "vip"))
    assert (kind, name, ctxid) == ("tags", "Cart", "tg-vip")
    untag(c)
    assert get_tag(c) is None
    from otrace.errors import TraceError

    with pytest.raises(TraceError, match="Error in untag"):
        untag(c)
    with pytest.raises(TraceError, match="Cannot tag a int: it takes no attributes"):
        tag(3)
    set_tag(c, "X:tg-a:1")
    assert get_tag(c) == "X:tg-a:1"
    set_tag(c, None)
    assert get_tag(c) is None


def test_trace_related(sample, announced):
    c = sample.Cart("ann")
    tid = tag(c)
    PARAMS.trace_related = True
    trace(sample.plain, sample, "plain")
    sample.plain([1], [c])
    assert "plain" not in STORE.recent.get("traces", {})
    sample.varargs(c)  # not traced: nothing
    trace(sample.varargs, sample, "varargs", condition="x==1")
    sample.varargs(c)
    assert STORE.get(tid).trc["related"] == {"varargs": original_of(sample.varargs)}
    assert any(line.startswith(f"varargs: related to {tid}") for line in announced)


def test_threads_hammer_traced_functions_while_listing_and_evicting(sample):
    PARAMS.max_recent = 5
    PARAMS.trace_handled = True  # hammer() catches the KeyErrors: record them anyway
    trace(sample.Cart.add_item, sample.Cart, "add_item", condition="qty>=0")
    trace(sample.recurse, sample, "recurse")
    errors = []
    stop = threading.Event()

    def hammer(n):
        c = sample.Cart(f"c{n}")
        try:
            for i in range(300):
                assert c.add_item(f"i{i}", i) == i + 1
                try:
                    sample.recurse(i % 4)
                except KeyError:
                    pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def lister():
        while not stop.is_set():
            [s.render() for s in traces()]
            for ctx in list(STORE.all.values()):
                ctx.get("qty")
            newest = STORE.newest
            if newest is not None and newest.kind == "traces":
                STORE.remove(newest)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    watcher = threading.Thread(target=lister)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    stop.set()
    watcher.join(5)
    assert errors == []
    assert traces()[0].matches == 8 * 300
    ids = list(STORE.all)
    assert len(ids) == len(set(ids))
    for ctx in STORE.recent["traces"]["Cart.add_item"]["tr-qty>=0"].values():
        owner = ctx["self"].owner
        assert ctx.trc["return_value"] == ctx["qty"] + 1 and owner.startswith("c")
    assert sum(len(v) for v in STORE.recent["exceptions"]["recurse"].values()) <= 5


def test_tutorial_transcript(sample, announced):
    """The original tutorial's trace / exception / assert / tag steps, end to end."""
    Cart = sample.Cart
    # trace -c name==apple,qty>=2 Cart.add_item
    spec = trace(Cart.add_item, Cart, "add_item", condition="name==apple,qty>=2")
    assert f"Tracing {spec.render()}" == "Tracing -c name==apple,qty>=2 Cart.add_item"
    c = Cart("ann")
    assert c.add_item("apple", qty=3) == 1
    assert re.fullmatch(
        r"Cart\.add_item:tr-name==apple,qty>=2:\S+ self=<tests\.tracing\.sample\.Cart object at 0x\w+>, name=apple, qty=3",
        announced[-1],
    )
    # trace Cart.boom ; c.boom(0)
    trace(Cart.boom, Cart, "boom")
    with pytest.raises(ZeroDivisionError, match="float division by zero"):
        c.boom(0)
    assert re.fullmatch(r"Cart\.boom:ex-ZeroDivisionError:" + TS, announced[-1])
    ctx = STORE.newest
    assert sorted(k for k in ctx if not k.startswith("__")) == ["d", "z"]
    assert sorted(ctx["__up"]) == ["__down", "__trc", "__up", "d", "self"]
    # set trace_active is already on; checker(-1) -> asserts context
    assert sample.checker(-1) == -1
    assert re.fullmatch(r"checker:as-positive:" + TS, announced[-1])
    # tag c ; trace -c taggedself Cart.add_item
    tid = tag(c)
    assert announced[-1] == tid
    trace(Cart.add_item, Cart, "add_item", condition="taggedself")
    c.add_item("pear")
    assert announced[-1].startswith("Cart.add_item:tr-taggedself;tg-0x")
    assert [s.render() for s in traces()] == ["Cart.boom", "-c taggedself Cart.add_item"] or [
        s.render() for s in traces()
    ] == ["-c taggedself Cart.add_item", "Cart.boom"]
    untrace("Cart.add_item")
    untrace("Cart.boom")
    assert traces() == [] and PARAMS.trace_active is False
    with pytest.raises(AssertionError):
        sample.checker(-1)
