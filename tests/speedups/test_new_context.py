"""otrace._trace_ids.context makes the same TraceContext as the class does, or declines.

Each case makes one context in C and one through ``TraceContext(...)`` from the same
arguments and compares everything a reader sees: the dict, ``__trc`` (keys in order, thread
name), the slots, and the ``__down`` link to a ``__up`` frame.  Then the cases C must leave
to the class, the thread names it reads without asking the thread, and references.  Skipped
where the extension is not built, unless ``OTRACE_REQUIRE_SPEEDUPS=1`` (CI): then it fails.
"""

from __future__ import annotations

import _thread
import gc
import os
import sys
import threading
import weakref

import pytest

from otrace.contexts import record
from otrace.contexts.lazy import LazyTrc, TrcDict
from otrace.contexts.record import FrameContext, TraceContext

if os.environ.get("OTRACE_REQUIRE_SPEEDUPS") == "1" and os.environ.get("OTRACE_PURE") != "1":
    assert record.context_fast is not None, "otrace._trace_ids is not built"
pytestmark = pytest.mark.skipif(record.context_fast is None, reason="otrace._trace_ids not used")

SLOTS = ("kind", "name", "ctxid", "live")


def fast(*args):
    record._clean(args[1], "..")  # (what the class caches at a name's or label's first)
    if args[2]:
        record._clean(args[2], ";")
    ctx = record.context_fast(*args)
    assert type(ctx) is TraceContext, args
    return ctx


def same(a: TraceContext, b: TraceContext) -> None:
    assert list(dict.keys(a)) == list(dict.keys(b))
    for key in dict.keys(a):
        if key not in ("__trc", "__up"):
            assert dict.__getitem__(a, key) is dict.__getitem__(b, key), key
    ta, tb = dict.__getitem__(a, "__trc"), dict.__getitem__(b, "__trc")
    assert list(dict.keys(ta)) == list(dict.keys(tb))
    for key in dict.keys(ta):
        if key != "id":
            assert dict.__getitem__(ta, key) == dict.__getitem__(tb, key), key
    for slot in SLOTS:
        assert getattr(a, slot) == getattr(b, slot), slot
    assert a.id == f"{a.name}:{a.ctxid}:{a.timestamp}"
    assert ta["id"] == a.id or ta["id"] == tb["id"] == "kept"
    assert a.id.rsplit(":", 1)[0] == b.id.rsplit(":", 1)[0]
    assert a.timestamp < b.timestamp  # one clock, issued in this order
    assert abs(a.created - b.created) < 5 and type(a.created) is float
    assert a.path == (a.kind, a.name, a.ctxid, a.timestamp)


CASES = [
    ("traces", "sell", "", {"qty": 1, "item": "x"}, None),
    ("traces", "Cart.sell", "qty==1", {"qty": 1}, {"func": len}),
    ("traces", "odd:name/x", "a:b/c", None, {}),
    ("exceptions", "fail", "ValueError", {}, {"id": "kept", "thread": "kept", "related": 3}),
    ("asserts", "Cart.check", "", None, None),
]


@pytest.mark.parametrize("case", CASES, ids=lambda a: f"{a[0]}-{a[1]}-{a[2]}")
def test_same_context_as_the_class(case):
    copy = lambda d: dict(d) if d is not None else None  # noqa: E731
    args = (*case[:3], case[3], copy(case[4]))
    a = fast(*args)
    b = TraceContext(*case[:3], case[3], copy(case[4]))
    same(a, b)
    if args[4] is not None:  # the very trc given, filled in
        assert a.trc is args[4]
    if args[3] is not None:
        assert args[3] is not dict.__getitem__(a, "__trc")


@pytest.mark.parametrize("trc_type", [TrcDict, LazyTrc])
def test_otrace_trc_classes_are_filled_in(trc_type):
    trc = trc_type(x=1)
    if trc_type is LazyTrc:  # (as capture leaves it: placeholders, nothing pending)
        trc._pending = None
    a = fast("exceptions", "fail", "KeyError", None, trc)
    assert a.trc is trc and type(trc) is trc_type
    assert list(dict.keys(trc)) == ["x", "id", "context", "thread", "related"]


def test_the_up_frame_leads_back_down():
    up, up2 = FrameContext({"v": 1}), FrameContext({"v": 2})
    a = fast("exceptions", "fail", "ValueError", {"__up": up}, None)
    b = TraceContext("exceptions", "fail", "ValueError", {"__up": up2}, None)
    assert dict.__getitem__(up, "__down") is a and dict.__getitem__(up2, "__down") is b
    same(a, b)
    a.unlink()
    assert "__down" not in up
    # a "__up" that is no frame context is a value like any other
    c = fast("exceptions", "fail", "ValueError", {"__up": {"v": 3}}, None)
    assert "__down" not in dict.__getitem__(c, "__up")


class Sub(dict):
    pass


@pytest.mark.parametrize(
    "args",
    [
        ("nokind", "sell", "", None, None),  # not a kind: the class makes its id
        ("traces", 3, "", None, None),
        ("traces", "sell", None, None, None),
        ("traces", "sell", "", Sub(a=1), None),  # a program's dict subclass: its own rules
        ("traces", "sell", "", None, Sub()),
        ("traces", "sell", "", [("a", 1)], None),
        ("traces", "never seen before " + str(id(object())), "", None, None),
        ("traces", "sell", "never seen label " + str(id(object())), None, None),
    ],
)
def test_declines_what_is_not_the_usual_case(args):
    assert record.context_fast(*args) is None


def test_bad_argument_count_raises():
    with pytest.raises(TypeError):
        record.context_fast("traces", "sell")


def _name_on(thread_factory) -> tuple[str, str]:
    out = []

    def run():
        ctx = fast("traces", "sell", "", None, None)
        out.append((ctx.trc["thread"], record._thread_name()))

    thread_factory(run)
    return out[0]


def test_thread_names_as_threading_says():
    def plain(run):
        t = threading.Thread(target=run, name="worker-7")
        t.start()
        t.join()

    class Named(threading.Thread):
        @property
        def name(self):  # the program's own: asked, as the class asks it
            return "from the property"

    def named(run):
        t = Named(target=run)
        t.start()
        t.join()

    class Renamed(threading.Thread):
        def run(self):
            self.name = "renamed"
            super().run()

    def renamed(run):
        t = Renamed(target=run)
        t.start()
        t.join()

    def raw(run):  # not started by threading: not in its table
        done = threading.Event()
        _thread.start_new_thread(lambda: (run(), done.set()), ())
        assert done.wait(10)

    assert _name_on(plain) == ("worker-7", "worker-7")
    assert _name_on(named) == ("from the property", "from the property")
    assert _name_on(renamed) == ("renamed", "renamed")
    got, want = _name_on(raw)
    assert got == want and got.startswith("Dummy-")


def test_references_kept_and_freed():
    values, trc = {"a": object()}, {}
    before = sys.getrefcount(values), sys.getrefcount(trc), sys.getrefcount(values["a"])
    for _ in range(100):
        ctx = fast("traces", "sell", "", values, trc)
        trc.clear()
    gone = weakref.ref(ctx)
    del ctx
    gc.collect()
    assert gone() is None
    assert (sys.getrefcount(values), sys.getrefcount(trc), sys.getrefcount(values["a"])) == before


# -- filing: otrace._trace_ids.file against ContextStore._file -----------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from otrace.contexts import store as store_mod  # noqa: E402
from otrace.contexts.store import ContextStore, Shelf  # noqa: E402
from otrace.params import Params  # noqa: E402


def _shape(store: ContextStore) -> tuple:
    def tree(level):
        return {k: tree(v) if type(v) is not TraceContext else v.id for k, v in level.items()}

    return (
        tree(store.recent),
        sorted(store.all),
        {k: list(v) for k, v in store._order.items()},
        {k: list(v) for k, v in store._waiting.items()},
        store._newest.id if store._newest is not None else None,
        sorted(store._saved_ids),
    )


OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.sampled_from(["traces", "exceptions"]),
            st.sampled_from(["sell", "Cart.add", "odd:name"]),
            st.sampled_from(["", "call", "x==1"]),
        ),
        st.tuples(st.just("limit"), st.sampled_from([0, 1, 2, 3, 5])),
        st.tuples(st.just("save"), st.integers(0, 50)),
        st.tuples(st.just("remove"), st.integers(0, 50)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_filing_in_c_keeps_the_store_as_python_does(ops):
    """The same contexts added to two stores, one filing in C and one in Python, through
    evictions (one, several after max_recent is lowered, the newest itself at 0), saved
    contexts, removals and directories made and pruned: the two stay alike."""
    _run(ops)


ADD = ("add", "traces", "sell", "call")


@pytest.mark.parametrize(
    "ops",
    [
        [("limit", 5), ADD, ADD, ADD, ADD, ("limit", 1), ADD],  # several go at once
        [("limit", 2), ADD, ("save", 0), ADD, ADD, ADD],  # a saved one leaves recent only
        [("limit", 1), ADD, ("add", "traces", "sell", "x==1"), ADD],  # directories pruned
        [("limit", 0), ADD, ADD],  # the newest goes at once
    ],
    ids=["several", "saved", "pruned", "zero"],
)
def test_filing_cases(ops):
    _run(ops)


def _run(ops):
    fast, slow = ContextStore(Params()), ContextStore(Params())
    made: list[TraceContext] = []
    real = store_mod._c_file
    assert real is not None
    for op in ops:
        if op[0] == "add":
            ctx = TraceContext(op[1], op[2], op[3], {"v": len(made)}, {})
            made.append(ctx)
            fast.add(ctx)
            store_mod._c_file = None
            try:
                slow.add(ctx)
            finally:
                store_mod._c_file = real
        elif op[0] == "limit":
            for params in (fast.params, slow.params):  # (0 only past the check: handled too)
                object.__setattr__(params, "max_recent", op[1])
        elif made:
            ctx = made[op[1] % len(made)]
            for store in (fast, slow):
                store.save(ctx) if op[0] == "save" else store.remove(ctx)
        assert _shape(fast) == _shape(slow), op


def _levels(tree, ctx):
    one = tree[ctx.kind]
    two = one[ctx.name]
    return one, two, two[ctx.ctxid]


def test_file_declines_what_is_not_the_usual_case():
    store = ContextStore(Params())
    ctx = TraceContext("traces", "sell", "", {}, {})
    args = (store.recent, store.all, store._order["traces"], ctx, 10, store._saved_ids, Shelf)
    assert record.file_fast(*args) is None  # its directories made, of the store's class
    assert all(type(level) is Shelf for level in _levels(store.recent, ctx))
    store.remove(ctx)
    store.add(ctx)
    other = TraceContext("traces", "sell", "", {}, {})
    waiting = TraceContext("traces", "sell", "", {}, {})
    waiting.live = object()
    for bad in [
        (store.recent, store.all, None, other, 10, store._saved_ids),  # no line for the kind
        (store.recent, store.all, store._order["traces"], waiting, 10, store._saved_ids),
        (store.recent, store.all, store._order["traces"], {"not": "ctx"}, 10, store._saved_ids),
        (store.recent, dict, store._order["traces"], other, 10, store._saved_ids),
        (store.recent, store.all, store._order["traces"], other, 10, list(store._saved_ids)),
        ({"traces": {"sell": 3}}, store.all, store._order["traces"], other, 10, set()),
    ]:
        assert record.file_fast(*bad, Shelf) is False
    assert _shape(store)[1] == [ctx.id]
