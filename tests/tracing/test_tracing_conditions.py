"""Condition parsing, rendering and evaluation against real traced calls."""

from __future__ import annotations

import pytest

from otrace.errors import TraceError
from otrace.tracing import (
    Always,
    And,
    ArgTest,
    Not,
    Or,
    Tagged,
    parse_condition,
    tag,
    trace,
    traces,
)
from tests.rt import STORE


def ids(kind="traces"):
    return sorted(STORE.recent.get(kind, {}).get("Cart.add_item", {}))


@pytest.mark.parametrize(
    "text, rendered",
    [
        ("call", "call"),
        ("return", "return"),
        ("all", "all"),
        ("tagged", "tagged"),
        ("taggedself", "taggedself"),
        ("name==apple", "name==apple"),
        ("name==apple,qty>=2", "name==apple,qty>=2"),
        ("qty!=3", "qty!=3"),
        ("qty<3", "qty<3"),
        ("qty<=3", "qty<=3"),
        ("qty>3.5", "qty>3.5"),
        ("name=='a,b'", "name=='a,b'"),
        ('name=="two words"', "name=='two words'"),
        ("name=='2'", "name=='2'"),
        ("qty==-2", "qty==-2"),
        ("x==True,y==None,z==False", "x==True,y==None,z==False"),
        ("self.owner==ann", "self.owner==ann"),
        ("return==3", "return==3"),
    ],
)
def test_parse_and_render_round_trip(text, rendered):
    pred = parse_condition(text)
    assert pred.render() == rendered
    assert parse_condition(pred.render()).render() == rendered


def test_value_typing():
    assert parse_condition("q==2").value == 2
    assert isinstance(parse_condition("q==2.5").value, float)
    assert parse_condition("q=='2'").value == "2"
    assert parse_condition("q==True").value is True
    assert parse_condition("q==None").value is None
    assert parse_condition("q==apple").value == "apple"
    assert parse_condition("q==+1e3").value == 1000.0


@pytest.mark.parametrize(
    "bad", ["name=apple", "nosuch", "a.b.c==1", "q==1x", "q=='open", "return.x==1"]
)
def test_invalid_conditions(bad):
    with pytest.raises(TraceError):
        parse_condition(bad)


def test_empty_condition_is_exceptions_only():
    assert parse_condition("") is None
    assert parse_condition(None) is None


def test_predicates_compose_and_print():
    p = ArgTest("a", "==", 1) & ArgTest("b", ">", 2)
    assert isinstance(p, And) and p.render() == "a==1,b>2"
    assert repr(p) == "And(ArgTest('a', '==', 1), ArgTest('b', '>', 2))"
    assert isinstance(p | Always("call"), Or)
    assert isinstance(~p, Not)
    assert repr(Tagged("self")) == "Tagged('self')"


def test_arg_match_all_items_and_label(sample):
    trace(sample.Cart.add_item, sample.Cart, "add_item", condition="name==apple,qty>=2")
    c = sample.Cart("ann")
    c.add_item("apple")  # qty default 1: no match
    c.add_item("pear", 5)  # name differs
    c.add_item("apple", 2)  # positional qty: proper binding (quirk 9 fixed)
    c.add_item(name="apple", qty=3)
    got = ids()
    assert got == ["tr-name==apple,qty>=2"]
    assert len(STORE.recent["traces"]["Cart.add_item"]["tr-name==apple,qty>=2"]) == 2


def test_every_operator(sample):
    for op, value, hits in [
        ("==", 2, 1),
        ("!=", 2, 2),
        ("<", 2, 1),
        ("<=", 2, 2),
        (">", 2, 1),
        (">=", 2, 2),
    ]:
        STORE.clear()
        trace(sample.plain, sample, "plain", condition=f"b{op}{value}")
        for b in (1, 2, 3):
            sample.plain(0, b)
        got = sum(len(v) for v in STORE.recent.get("traces", {}).get("plain", {}).values())
        assert got == hits, op


def test_attribute_condition(sample):
    trace(sample.Cart.add_item, sample.Cart, "add_item", condition="self.owner==zed")
    sample.Cart("ann").add_item("x")
    sample.Cart("zed").add_item("x")
    assert ids() == ["tr-self.owner==zed"]


def test_quoted_and_typed_values(sample):
    trace(sample.plain, sample, "plain", condition="a=='a,b'")
    sample.plain("a,b", "")
    sample.plain("a", "")
    assert list(STORE.recent["traces"]["plain"]) == ["tr-a=='a,b'"]


def test_string_two_does_not_match_int_two(sample):
    trace(sample.plain, sample, "plain", condition="a=='2'")
    sample.plain(2)
    assert "traces" not in STORE.recent
    sample.plain("2", "")
    assert "traces" in STORE.recent


def test_return_condition_for_functions_and_methods(sample, announced):
    trace(sample.plain, sample, "plain", condition="return==8")
    assert sample.plain(3, 5) == 8
    assert sample.plain(1) == 3
    ctxs = list(STORE.recent["traces"]["plain"]["tr-return==8"].values())
    assert len(ctxs) == 1 and ctxs[0].trc["return_value"] == 8 and ctxs[0]["b"] == 5
    trace(sample.Cart.add_item, sample.Cart, "add_item", condition="return>=2,name==b")
    c = sample.Cart("ann")
    c.add_item("b")
    c.add_item("a")
    c.add_item("b")
    assert ids() == ["name==b,return>=2".join(["tr-", ""])]
    assert any(line.endswith("return 3") for line in announced)


def test_missing_argument_is_no_match_with_warning(sample, backend):
    spec = trace(sample.plain, sample, "plain", condition="nosuch==1")
    assert any("no argument nosuch" in w for w in spec.warnings)
    sample.plain(1)
    assert "traces" not in STORE.recent
    if backend == "inplace":  # certain not to match: the call hook is not even generated
        assert spec.last_error is None
    else:
        assert "nosuch" in spec.last_error


def test_failing_condition_counts_as_no_match_and_is_recorded(sample):
    class Evil:
        def __eq__(self, other):
            raise RuntimeError("no eq for you")

        __hash__ = object.__hash__

    spec = trace(sample.decorated, sample, "decorated", condition="x==1")
    evil = Evil()
    assert sample.varargs(evil) == ((evil,), {})
    trace(sample.varargs, sample, "varargs", condition="x==1")
    with pytest.raises(TypeError):
        sample.decorated(evil, 0)
    spec2 = trace(sample.posonly, sample, "posonly", condition="a<3")
    assert sample.posonly("text", 1) == ("text", 1, 3)  # str < int: TypeError -> no match
    assert "traces" not in STORE.recent
    assert spec.last_error == "RuntimeError: no eq for you" and spec.errors == 1
    assert "exceptions" in STORE.recent  # the call's own TypeError is still traced
    assert spec2.last_error.startswith("TypeError") and spec2.errors == 1


def test_tagged_conditions(sample):
    c, d = sample.Cart("ann"), sample.Cart("bob")
    tag_id = tag(c)
    trace(sample.Cart.add_item, sample.Cart, "add_item", condition="taggedself")
    d.add_item("x")
    c.add_item("x")
    (ctxid,) = ids()
    assert ctxid == "tr-taggedself;" + tag_id.split(":")[1]
    STORE.clear()
    trace(sample.varargs, sample, "varargs", condition="tagged")
    sample.varargs([1], [2])
    sample.varargs([1], b=c)
    (only,) = STORE.recent["traces"]["varargs"]
    assert only.startswith("tr-taggedb;tg-0x")


def test_keyword_conditions(sample, announced):
    trace(sample.plain, sample, "plain", condition="call")
    sample.plain(1)
    trace(sample.Cart.add_item, sample.Cart, "add_item", condition="return")
    sample.Cart("a").add_item("z")
    trace(sample.helper, sample, "helper", condition="all")
    sample.helper(2)
    assert list(STORE.recent["traces"]["plain"]) == ["tr-call"]
    assert list(STORE.recent["traces"]["Cart.add_item"]) == ["tr-return"]
    assert list(STORE.recent["traces"]["helper"]) == ["tr-call"]
    (helper_ctx,) = STORE.recent["traces"]["helper"]["tr-call"].values()
    assert helper_ctx.trc["return_value"] == 0.5
    assert f"{helper_ctx.id} return 0.5" in announced
    assert [s.render() for s in traces()] == [
        "-c return Cart.add_item",
        "-c all helper",
        "-c call plain",
    ]


def test_positional_only_and_kw_only(sample):
    trace(sample.posonly, sample, "posonly", condition="a==1,c==3,b==2")
    assert sample.posonly(1, b=2) == (1, 2, 3)
    assert sample.posonly(1, 2, c=4) == (1, 2, 4)
    assert list(STORE.recent["traces"]["posonly"]) == ["tr-a==1,b==2,c==3"]


def test_varkw_condition(sample):
    trace(sample.varargs, sample, "varargs", condition="color==red")
    sample.varargs(1, color="blue")
    sample.varargs(1, color="red")
    (ctx,) = STORE.recent["traces"]["varargs"]["tr-color==red"].values()
    assert ctx["args"] == (1,) and ctx["kwargs"] == {"color": "red"}


def test_trace_active_switches_recording_off_and_on(sample):
    from tests.rt import PARAMS

    trace(sample.plain, sample, "plain", condition="call")
    sample.plain(1)
    assert len(STORE.recent["traces"]["plain"]["tr-call"]) == 1
    PARAMS.set("trace_active", False)
    sample.plain(2)  # wrapper stays, records nothing
    assert len(STORE.recent["traces"]["plain"]["tr-call"]) == 1
    PARAMS.set("trace_active", True)
    sample.plain(3)
    assert len(STORE.recent["traces"]["plain"]["tr-call"]) == 2
