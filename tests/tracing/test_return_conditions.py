"""Conditions on the return value only: nothing per call but the value's test, and a
matching return recorded with the arguments as they were called (both back ends)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from otrace import holds
from otrace.tracing import handlers, trace
from tests.rt import STORE

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def rs():
    from tests.tracing import retsample

    return retsample


@pytest.fixture
def calls_made(monkeypatch):
    """How many Call objects tracing made (one per call that reached the handlers)."""
    made: list[object] = []
    real = handlers.Call

    class Counted(real):  # type: ignore[misc, valid-type]
        __slots__ = ()

        def __init__(self, *args, **kwargs):
            made.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(handlers, "Call", Counted)
    return made


def contexts(name, label):
    return list(STORE.recent.get("traces", {}).get(name, {}).get(label, {}).values())


def test_no_match_makes_no_call_and_no_context(rs, calls_made):
    spec = trace(rs.scale, rs, "scale", condition="return==99")
    assert [rs.scale(i) for i in range(5)] == [0, 2, 4, 6, 8]
    assert calls_made == [] and "traces" not in STORE.recent
    assert spec.matches == 0 and spec.errors == 0


def test_match_records_call_time_arguments(rs, calls_made, announced):
    trace(rs.scale, rs, "scale", condition="return==12")
    assert rs.scale(3) == 6
    assert rs.scale(4, b=3) == 12
    assert rs.scale(6) == 12
    assert len(calls_made) == 2
    first, second = contexts("scale", "tr-return==12")
    assert (first["a"], first["b"]) == (4, 3) and first.trc["return_value"] == 12
    assert (second["a"], second["b"]) == (6, 2)
    assert str(first.trc["argstr"]) == "a=4, b=3"
    assert any(line.endswith("return 12") for line in announced)


def test_keyword_only_varargs_and_kwargs(rs):
    trace(rs.keyed, rs, "keyed", condition="return>=105,return<200")
    assert rs.keyed(1, k=2) == 103
    assert rs.keyed(-1) is None  # None >= 105: TypeError -> no match, noted
    assert rs.keyed(5, 6, 7, drop=1, color="red") == 106
    (ctx,) = contexts("keyed", "tr-return<200,return>=105")
    assert ctx["a"] == 5 and ctx["rest"] == (6, 7) and ctx["k"] == 1
    assert ctx["more"] == {"drop": 1, "color": "red"}  # as called (the body pops "drop")


def test_return_none_and_implicit_return(rs):
    trace(rs.keyed, rs, "keyed", condition="return==None")
    trace(rs.nothing, rs, "nothing", condition="return!=None")
    rs.keyed(3)
    rs.keyed(-3)
    rs.nothing(5)
    (ctx,) = contexts("keyed", "tr-return==None")
    assert ctx["a"] == -3 and ctx.trc["return_value"] is None
    assert "nothing" not in STORE.recent["traces"]


def test_count_applies_to_matches_only(rs):
    spec = trace(rs.counted, rs, "counted", condition="return>1", count=2)
    assert [rs.counted(n) for n in (1, 3, 0, 4, 5)] == [1, 3, 0, 4, 5]
    assert [c["n"] for c in contexts("counted", "tr-return>1")] == [3, 4]
    assert spec.matches == 2 and not spec.active
    skip = trace(rs.counted, rs, "counted", condition="return>1", count=-1)
    rs.counted(2)
    rs.counted(1)
    rs.counted(7)
    assert [c["n"] for c in contexts("counted", "tr-return>1")] == [3, 4, 7]
    assert skip.matches == 2


def test_raising_comparison_is_no_match_and_noted(rs):
    class Evil:
        def __eq__(self, other):
            raise RuntimeError("no eq for you")

        def __mul__(self, other):
            return self

        __hash__ = object.__hash__

    spec = trace(rs.scale, rs, "scale", condition="return==3")
    evil = Evil()
    assert rs.scale(evil, 1) is evil
    assert "traces" not in STORE.recent
    assert spec.last_error == "RuntimeError: no eq for you" and spec.errors == 1


def test_generator_return_value(rs):
    trace(rs.gen, rs, "gen", condition="return==-2")
    assert list(rs.gen(5)) == [5]
    (ctx,) = contexts("gen", "tr-return==-2")
    assert ctx["n"] == 5 and ctx.trc["return_value"] == -2


def test_async_def_match_and_hold(rs):
    spec = trace(rs.fetch, rs, "fetch", condition="return==14", action="hold")
    out: dict = {}

    async def main():
        assert await rs.fetch(3) == 6  # no match: no hold
        held = asyncio.create_task(rs.fetch(7), name="held-return")
        for _ in range(200):
            await asyncio.sleep(0.005)
            if holds.pending():
                break
        (ctx,) = holds.pending()
        out["ctx"] = ctx
        assert not held.done()
        t = threading.Thread(target=lambda: out.setdefault("resumed", holds.resume(ctx.id)))
        t.start()
        out["result"] = await asyncio.wait_for(held, 5)
        t.join(5)

    asyncio.run(main())
    ctx = out["ctx"]
    assert out["result"] == 14 and out["resumed"] is True
    assert ctx.kind == "holds" and ctx["v"] == 7 and ctx.trc["return_value"] == 14
    assert ctx.trc["task"] == "held-return" and spec.matches == 1


def test_related_on_keeps_the_general_path(rs, calls_made):
    from tests.rt import PARAMS

    PARAMS.trace_related = True
    try:
        trace(rs.scale, rs, "scale", condition="return==99")
        assert rs.scale(2) == 4
        assert len(calls_made) == 1  # every call reaches on_call (trace_related)
    finally:
        PARAMS.trace_related = False


def test_untraced_meanwhile_records_nothing(rs):
    from otrace.tracing import untrace

    started, go = threading.Event(), threading.Event()
    trace(rs.scale, rs, "scale", condition="return==4")

    class Slow:
        def __mul__(self, other):
            started.set()
            go.wait(5)
            return 4

    result: list = []
    worker = threading.Thread(target=lambda: result.append(rs.scale(Slow())))
    worker.start()
    assert started.wait(5)
    untrace("scale")
    go.set()
    worker.join(5)
    assert result == [4] and "traces" not in STORE.recent


def test_tag_action_on_a_return_condition(rs):
    from otrace.tracing import get_tag

    trace(rs.Account.withdraw, rs.Account, "withdraw", condition="return<0", action="tag")
    rich, poor = rs.Account(100), rs.Account(5)
    assert rich.withdraw(10) == 90 and poor.withdraw(10) == -5
    assert get_tag(rich) is None
    tag_id = get_tag(poor)
    assert tag_id.startswith(f"Account:tg-return<0;0x{id(poor):x}:")
    ctx = STORE.get(tag_id)
    assert ctx.kind == "tags" and ctx["self"] is poor and ctx["amount"] == 10


def test_edit_to_a_new_signature_below_a_return_condition(rs, backend):
    from otrace.tracing import patching

    original = rs.counted
    trace(rs.counted, rs, "counted", condition="return==6")
    try:
        patching.patch(
            rs, "counted", "def counted(n, *, times=1):\n    n = n * times\n    return n\n"
        )
        assert rs.counted(2, times=3) == 6 and rs.counted(2) == 2
        (ctx,) = contexts("counted", "tr-return==6")
        assert ctx["n"] == 2 and ctx["times"] == 3
        if backend == "inplace":
            assert rs.counted is original
    finally:
        patching.unpatch_all()
    assert rs.counted(6) == 6 and rs.counted(5) == 5  # the original code, still traced
    assert [c["n"] for c in contexts("counted", "tr-return==6")] == [2, 6]


def test_parameters_never_rebound_are_read_at_return(rs, calls_made):
    trace(rs.add, rs, "add", condition="return==9")
    trace(rs.opts, rs, "opts", condition="return>10")
    assert [rs.add(i) for i in range(3)] == [2, 3, 4] and calls_made == []
    assert rs.add(4, b=5) == 9
    assert rs.opts(1, 2, 3) == 4 and rs.opts(1, 2, 3, k=9) == 12
    (ctx,) = contexts("add", "tr-return==9")
    assert (ctx["a"], ctx["b"]) == (4, 5)
    (ctx,) = contexts("opts", "tr-return>10")
    assert ctx["a"] == 1 and ctx["rest"] == (2, 3) and ctx["k"] == 9
    assert str(ctx.trc["argstr"]) == "a=1, (2, 3), k=9"


def test_never_rebound_generator_and_async(rs, calls_made):
    trace(rs.countdown, rs, "countdown", condition="return==4")
    trace(rs.double, rs, "double", condition="return==10")
    assert list(rs.countdown(5)) == [5] and list(rs.countdown(6)) == [6]
    assert asyncio.run(rs.double(5)) == 10 and asyncio.run(rs.double(1)) == 2
    assert len(calls_made) == 2  # one per match: none for the returns that do not match
    assert [c["n"] for c in contexts("countdown", "tr-return==4")] == [5]
    assert [c["v"] for c in contexts("double", "tr-return==10")] == [5]


def test_rebinding_by_closure_or_handler_keeps_the_called_value(rs):
    trace(rs.closure_rebind, rs, "closure_rebind", condition="return==5")
    trace(rs.handler_rebind, rs, "handler_rebind", condition="return==7")
    assert rs.closure_rebind(1) == 5 and rs.handler_rebind(3) == 7
    (ctx,) = contexts("closure_rebind", "tr-return==5")
    assert ctx["a"] == 1
    (ctx,) = contexts("handler_rebind", "tr-return==7")
    assert ctx["a"] == 3


@pytest.mark.parametrize(
    "body, rebinds",
    [
        ("return a", False),
        ("b = a\n    return b", False),
        ("a = 1", True),
        ("a += 1", True),
        ("del a", True),
        ("for a in (): pass", True),
        ("with x as a: pass", True),
        ("[(a := 1) for _ in ()]", True),
        ("import a", True),
        ("import os.path as a", True),
        ("from os import path as a", True),
        ("def a(): pass", True),
        ("class a: pass", True),
        ("def f():\n        nonlocal a\n        a = 1", True),
        ("def f(a):\n        return a", False),
        ("match x:\n        case [*a]: pass", True),
        ("match x:\n        case {**a}: pass", True),
        ("match x:\n        case a: pass", True),
    ],
)
def test_rebinding_is_found(body, rebinds):
    import ast

    from otrace.tracing.rewrite import _rebinds

    node = ast.parse(f"def f(a, x=1):\n    {body}\n").body[0]
    assert _rebinds(node, {"a"}) is rebinds
