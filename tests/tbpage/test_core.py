"""The page's model without a server: frames from a context chain, sessions, evaluation."""

from __future__ import annotations

import pickle
import sys
import threading

from otrace.contexts import TraceContext
from otrace.contexts import capture as cap
from otrace.web.traceback_core import (
    ContextSource,
    PageSession,
    SessionTable,
    chain_frames,
    describe,
    evaluate,
    open_session,
)

MODULE_CONSTANT = "from the module"


def _inner(n):
    inner_local = n * 2
    raise ValueError(f"bad {inner_local}")


def _outer():
    outer_local = "outer"
    _inner(3)
    return outer_local


def make_context() -> TraceContext:
    try:
        _outer()
    except ValueError as exc:
        values, trc = cap.capture_exception(exc, exc.__traceback__, None, context_lines=7)
    ctx = TraceContext("exceptions", "test_core._outer", "ValueError", values, trc)
    return ctx


def plain(node):
    """What a context looks like after a trip through a store that drops our classes."""
    out = {k: v for k, v in node.items() if k not in ("__up", "__down")}
    out["__trc"] = dict(node["__trc"])
    for key in ("exc_stack", "exc_context"):
        if key in out["__trc"]:
            out["__trc"][key] = str(out["__trc"][key])
    if "__up" in node:
        out["__up"] = plain(node["__up"])
    return out


def test_frames_come_from_the_chain_outermost_first():
    ctx = make_context()
    frames = chain_frames(ctx, live=True)
    names = [f.funcname for f in frames]
    assert names[-2:] == ["_outer", "_inner"]
    inner, outer = frames[-1], frames[-2]
    assert inner.locals["inner_local"] == 6
    assert outer.locals["outer_local"] == "outer"
    assert all(not k.startswith("__") for f in frames for k in f.locals)
    cur = [text for n, text, is_cur in inner.source() if is_cur]
    assert cur == ['    raise ValueError(f"bad {inner_local}")']
    assert inner.globals is sys.modules[__name__].__dict__


def test_session_locals_are_copies():
    ctx = make_context()
    session = open_session(ctx, live=True)
    frame = session.frames[-1]
    assert evaluate("inner_local = 100", frame).error is None
    assert evaluate("inner_local + 1", frame).value == "101"
    assert ctx["inner_local"] == 6  # the stored context is untouched


def test_evaluate_expression_statements_output_and_errors():
    frame = open_session(make_context(), live=True).frames[-1]
    r = evaluate("print('hi', n)\nn * 7", frame)
    assert (r.output, r.value, r.error) == ("hi 3\n", "21", None)
    assert evaluate("MODULE_CONSTANT", frame).value == repr(MODULE_CONSTANT)
    r = evaluate("1/0", frame)
    assert r.value is None and "ZeroDivisionError" in r.error and "<frame" in r.error
    assert "SyntaxError" in evaluate("def (", frame).error
    assert "SystemExit" in evaluate("raise SystemExit(3)", frame).error


def test_output_is_captured_per_evaluation_across_threads():
    frame = open_session(make_context(), live=True).frames[-1]
    results = {}
    start = threading.Barrier(4)

    def worker(i):
        start.wait()
        results[i] = evaluate(f"for _k in range(200): print({i})", frame).output

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i in range(4):
        assert results[i] == f"{i}\n" * 200


def test_postmortem_main_module_gets_fresh_globals():
    ctx = plain(make_context())
    ctx["__up"]["__trc"]["module"] = "__main__"
    session = open_session(ctx, live=False)
    outer = session.frames[-2]
    assert outer.globals is not sys.modules["__main__"].__dict__
    assert evaluate("helper = 41", outer).error is None
    assert evaluate("def f(): return helper\n", outer).error is None  # defined into locals
    assert evaluate("outer_local", outer).value == "'outer'"
    # a module that is loaded here still gives its globals, even post-mortem
    assert session.frames[-1].globals is sys.modules[__name__].__dict__


def test_plain_pickled_chain_renders_like_the_live_one():
    live = open_session(make_context(), live=True)
    dead = open_session(pickle.loads(pickle.dumps(plain(make_context()))), live=False)
    assert [f.funcname for f in live.frames] == [f.funcname for f in dead.frames]
    assert dead.title == "ValueError: bad 6"
    assert dead.trace_id.startswith("test_core._outer:ex-ValueError:")


def test_describe_without_exception_text():
    ctx = TraceContext("traces", "Cart.add", "", {"x": 1}, {"frame": ("f.py", 3, "add", None)})
    assert describe(ctx)[0] == "trace in Cart.add (tr)"


def test_session_table_drops_oldest():
    table = SessionTable(2)
    sessions = [PageSession("id", "t", "", [], True) for _ in range(3)]
    table.add(sessions[0])
    table.add(sessions[1])
    assert table.get(sessions[0].id) is sessions[0]  # now most recently used
    dropped = table.add(sessions[2])
    assert dropped == [sessions[1]]
    assert table.get(sessions[1].id) is None and len(table) == 2


def test_source_from_tree():
    ctx = plain(make_context())
    tid = ctx["__trc"]["id"]
    name, ctxid, ts = tid.split(":")
    tree = {"exceptions": {name: {ctxid: {ts: {":": ctx}}}}}
    src = ContextSource.from_tree(tree)
    assert src.list_ids() == [tid]
    assert src.get(tid) is ctx
    assert src.get("Nope.f:ex-X:1") is None
    assert src.get("garbage") is None
