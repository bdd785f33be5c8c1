"""The trace / exception / assert / tag steps of the tutorial, typed at the shell."""

from __future__ import annotations

import threading
import time

import pytest

from otrace import holds
from tests.rt import PARAMS, STORE


def test_trace_exception_and_browse(t, sh, shop):
    assert t.out("trace Cart.boom") == "Tracing Cart.boom"
    assert PARAMS.trace_active
    with pytest.raises(ZeroDivisionError):
        shop.c.boom(0)
    ctx = STORE.newest
    assert ctx.id.startswith("Cart.boom:ex-ZeroDivisionError:")
    t.out("cd ~~")
    assert sh.prompt().startswith("Cart..")
    names = t.out("ls").split()
    assert names == ["__trc", "__up", "d", "z"]
    assert t.out("z") == "42"
    assert "helper" in t.out("pr __trc['where']")
    t.out("up")
    assert sh.prompt() == "osh..boom> "
    assert "self" in t.out("ls").split()
    assert t.out("d") == "0"
    t.out("dn")
    assert t.out("z") == "42"
    assert t.out("save") == f"Saved {ctx.id}"
    t.out("cd ~~g")
    listing = t.out("trace")
    assert listing.startswith("Cart.boom") and "matches" in listing
    assert t.out("untrace Cart.boom") == "untraced Cart.boom"
    assert not PARAMS.trace_active
    assert t.out("trace") == "Nothing is traced"


def test_trace_call_condition_and_show(t, sh, shop):
    assert t.out("trace -c name==apple,qty>=2 Cart.add_item").startswith("Tracing -c")
    shop.c.add_item("pear", qty=5)
    assert STORE.newest is None
    shop.c.add_item("apple", qty=3)
    ctx = STORE.newest
    assert ctx.id.startswith("Cart.add_item:tr-name==apple,qty>=2:")
    t.out("cd ~~")
    assert t.out("ls").split() == ["__trc", "name", "qty", "self"]
    assert t.out("qty") == "3"
    assert t.out("show").startswith("def add_item(self, name, qty=1):")
    t.out("cdt")
    assert t.out("return_value") == "2"


def test_trace_errors(t):
    assert "must be one of" in t.err("trace -a jump Cart.add_item")
    assert "Expected integer" in t.err("trace -n x Cart.add_item")
    assert "Invalid" in t.err("trace nosuch.thing") or "No such" in t.err("trace nosuch.thing")
    assert t.err("trace -c 'name=apple' Cart.add_item")
    assert t.err("untrace nosuch")
    assert "Cannot" in t.err("trace len") or t.err("trace len")


def test_count_and_list(t, shop):
    t.out("trace -c call -n 2 plain")
    for i in range(4):
        shop.plain(i)
    kept = [c for c in STORE.all.values() if c.name == "plain"]
    assert len(kept) == 2


def test_traceassert_and_tags(t, sh, shop):
    t.out("set safe_mode False")  # tests what safe mode refuses
    from otrace.tracing import traceassert

    def checker(v):
        local_note = "checking"  # noqa: F841
        traceassert(v > 0, label="positive")
        return v

    shop.checker = checker
    with pytest.raises(AssertionError):
        checker(-1)
    t.out("set trace_active True")
    assert checker(-1) == -1
    ctx = STORE.newest
    assert ctx.id.startswith("checker:as-positive:")
    t.out("cd ~~")
    assert {"local_note", "v"} <= set(t.out("ls").split())
    t.out("cd ~~g")
    t.out("tag c")
    tagged = STORE.newest
    assert tagged.id.startswith("Cart:tg-0x")
    assert t.out("c._otrace_tag") == tagged.id
    t.out("untag c")
    assert "Error in untag" in t.err("untag c")


def test_break_in_worker_thread_and_resume(t, sh, shop):
    t.out("set safe_mode False")  # tests what safe mode refuses
    t.out("trace -a break -c call plain")
    results = []
    worker = threading.Thread(target=lambda: results.append(shop.plain(9)))
    worker.start()
    for _ in range(100):
        if holds.pending():
            break
        time.sleep(0.05)
    ctx = holds.pending()[0]
    assert ctx.id.startswith("plain:br-call:")
    assert sh.prompt().startswith("BRK:")
    t.out("cd ~~")
    assert t.out("a") == "9"
    assert t.out("resume") == f"Resuming {ctx.id}"
    worker.join(5)
    assert results == [11]
    assert sh.cwd == ("osh", "globals")


def test_del_and_resume_by_id(t, sh, shop):
    t.out("trace -c call plain")
    shop.plain(1)
    ctx = STORE.newest
    assert t.out(f"del {ctx.id}") == f"Deleted {ctx.id}"
    assert STORE.get(ctx.id) is None
    assert "No match" in t.err("del nosuch*")
    shop.plain(2)
    assert "Unable to resume" in t.err("resume plain:*")
