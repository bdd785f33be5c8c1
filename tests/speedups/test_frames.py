"""otrace._frames reads running frames as capture's Python loop does, and touches nothing.

Each test builds a stack of one shape (closures, cells, unbound and deleted variables,
generators, coroutines, comprehensions, ``locals()``, ``exec``, hidden frames, another
thread's frames), records it with the C ``live_records`` first, then with the pure loop,
and compares record by record; it also checks which frames C left to Python.  Skipped where
the extension is not built, unless ``OTRACE_REQUIRE_SPEEDUPS=1`` (CI): then it fails.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import subprocess
import sys
import threading
import weakref
from types import FrameType
from typing import Any

import pytest

from otrace.contexts import capture, speedups
from otrace.contexts.frames import CODES, HIDDEN, code_info, hide_code
from otrace.contexts.lazy import loc_dict, variables
from tests.speedups.ext import extension
from tests.speedups.test_speedups import python_walk

REQUIRED = os.environ.get("OTRACE_REQUIRE_SPEEDUPS") == "1"


@pytest.fixture(scope="module")
def c():
    return extension("_frames")  # (pure: its records' marker is then unknown to lazy.py)


def test_built_and_used_when_required() -> None:
    if not REQUIRED:
        pytest.skip("OTRACE_REQUIRE_SPEEDUPS is not set")
    mod = importlib.import_module("otrace._frames")
    if os.environ.get("OTRACE_PURE") != "1":
        assert speedups.live_records is mod.live_records
        assert capture._c_live_records is mod.live_records


@pytest.mark.parametrize("pure", ["1", None])
def test_pure_switch(c, pure: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OTRACE_PURE"}
    if pure is not None:
        env["OTRACE_PURE"] = pure
    code = "from otrace.contexts import capture; print(capture._c_live_records is None)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [str(pure == "1")]


def _plain(raw: Any) -> Any:
    """A record's variables as a dict (C keeps the values of its code info's names, the pure
    loop 3.13's pairs)."""
    return loc_dict(raw[0], raw[2])


def records(c, frame: FrameType | None, context: int = 5) -> tuple[list, list, list]:
    """(C's records, the pure loop's, the frames C left to Python), C first: the pure loop
    on 3.11/3.12 leaves a cached (emptied) dict in each frame it reads."""
    slow: list = []

    def one(frame: FrameType, context: int) -> Any:
        slow.append(frame)
        return capture._one_record(frame, context)

    for code in _codes(frame):  # (learnt in Python on first sight: see test_code_not_yet_known)
        code_info(code)
    got = c.live_records(frame, CODES, capture._LINECACHE, context, one)
    saved = capture._c_live_records
    capture._c_live_records = None
    try:
        want = capture._live_records(frame, False, context)
    finally:
        capture._c_live_records = saved
    return got, want, slow


def _codes(frame: FrameType | None) -> list:
    out = []
    while frame is not None:
        out.append(frame.f_code)
        frame = frame.f_back
    return out


def same(got: list, want: list) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[0] is w[0]  # code info
        assert g[1] == w[1]  # f_lasti
        gl, wl = _plain(g), _plain(w)
        if wl is None:
            assert gl is None
        else:
            assert gl.keys() == wl.keys(), g[0][2]
            assert all(gl[k] is wl[k] for k in gl), g[0][2]
        assert g[3] == w[3]  # module
        assert g[4] is w[4]  # linecache entry


def compare(c, frame: FrameType | None, context: int = 5) -> tuple[list, list]:
    got, want, slow = records(c, frame, context)
    same(got, want)
    return got, slow


def _deep(n: int, fn, *args):
    marker = [n]
    return _deep(n - 1, fn, *args) if n else fn(*args, marker)


def names(recs: list) -> list[str]:
    return [r[0][2] for r in recs]


def test_plain_stack(c) -> None:
    got, slow = _deep(12, lambda m: compare(c, sys._getframe()))
    assert names(got)[:14] == ["<lambda>"] + ["_deep"] * 13
    assert _plain(got[1]) == {"n": 0, "fn": _plain(got[1])["fn"], "args": (), "marker": [0]}
    # every function frame of this test's stack read in C; pytest's module-level frames
    # (if any) and hidden frames went to Python
    assert all(f.f_code.co_name not in ("_deep", "<lambda>") for f in slow)


def test_none_and_bad_arguments(c) -> None:
    assert c.live_records(None, {}, {}, 5, capture._one_record) == []
    with pytest.raises(TypeError):
        c.live_records(42, {}, {}, 5, capture._one_record)
    with pytest.raises(TypeError):
        c.live_records(None, [], {}, 5, capture._one_record)
    with pytest.raises(TypeError):
        c.live_records(sys._getframe(), {}, {}, 5)


def test_context_zero_keeps_no_source(c) -> None:
    got, _ = compare(c, sys._getframe(), context=0)
    assert all(r[4] is None for r in got)


def test_cells_free_variables_unbound_and_deleted(c) -> None:
    def outer(arg_cell, plain):
        local_cell = [1]
        gone_cell = 2
        gone = 3
        del gone_cell, gone

        def inner(x):
            later = None  # noqa: F841 (unbound when read: assigned after)
            del later
            return compare(c, sys._getframe()) + ((arg_cell, local_cell, x),)

        def keeps_cells():
            return arg_cell, local_cell, gone_cell  # noqa: F821

        out = inner(7)
        not_yet = 1  # noqa: F841
        return out, keeps_cells

    (got, slow, seen), _ = outer("a", "b")
    inner_vars, outer_vars = _plain(got[0]), _plain(got[1])
    assert inner_vars == {"x": 7, "arg_cell": "a", "local_cell": [1], "c": c}
    assert set(outer_vars) == {"arg_cell", "plain", "local_cell", "inner", "keeps_cells", "c"}
    assert outer_vars["arg_cell"] == "a"  # an argument that is a cell: its value, not the cell
    assert not slow or all(f.f_code.co_name not in ("inner", "outer") for f in slow)


def test_generator_and_coroutine_frames(c) -> None:
    def gen():
        yield compare(c, sys._getframe())

    got, _ = next(gen())
    assert names(got)[:2] == ["gen", "test_generator_and_coroutine_frames"]

    async def inner(n):
        await asyncio.sleep(0)
        return compare(c, sys._getframe())

    async def outer():
        waiting = "w"  # noqa: F841
        return await inner(3)

    got, _ = asyncio.run(outer())
    assert names(got)[:2] == ["inner", "outer"]
    assert _plain(got[1])["waiting"] == "w"


def test_comprehension_in_a_function(c) -> None:
    def f():
        outer_name = 1  # noqa: F841
        return [compare(c, sys._getframe()) for x in (5,)][0]

    got, _ = f()
    # 3.12+: the comprehension runs in f's frame (PEP 709), its x among f's variables
    assert "f" in names(got)


def test_a_frame_that_called_locals_goes_to_python(c) -> None:
    def f():
        seen = locals()  # noqa: F841 (3.11/3.12: the frame's cached dict now holds names)
        mine = 1  # noqa: F841
        return compare(c, sys._getframe())

    got, slow = f()
    assert _plain(got[0])["mine"] == 1
    if sys.version_info < (3, 13):
        assert slow and slow[0].f_code is f.__code__


def test_extra_names_stored_through_f_locals(c) -> None:
    def f():
        frame = sys._getframe()
        frame.f_locals["extra"] = 42
        # (before 3.13 the pure loop empties the frame's dict after its copy, extra names
        # too: compared only from 3.13)
        return records(c, frame) if sys.version_info < (3, 13) else compare(c, frame)

    got, slow = f()[0::2] if sys.version_info < (3, 13) else f()
    assert slow and slow[0].f_code is f.__code__  # shown as f_locals shows it
    assert _plain(got[0])["extra"] == 42


def test_exec_class_body_and_module_level(c) -> None:
    ns: dict = {"compare": compare, "c": c, "sys": sys}
    exec(  # noqa: S102
        "out = []\n"
        "class K:\n"
        "    inside = 1\n"
        "    out.append(compare(c, sys._getframe()))\n"
        "out.append(compare(c, sys._getframe()))\n",
        ns,
    )
    (in_class, slow_class), (at_top, slow_top) = ns["out"]
    assert names(in_class)[:2] == ["K", "<module>"]
    assert _plain(in_class[0])["inside"] == 1
    assert at_top[0][2] is None  # module level: its module's globals, not copied
    # a class body's variables are its namespace: Python copies them (frames.namespace_copy);
    # module level is recognised in C
    slow = {f.f_code.co_name for f in slow_class + slow_top}
    assert "K" in slow and "<module>" not in slow


def test_globals_of_a_dict_subclass_go_to_python(c) -> None:
    """Neither loop asks a program's dict subclass for the module's name through its own
    ``get`` (program code: until this stop the pure loop did)."""

    class G(dict):
        def get(self, key, default=None):
            raise AssertionError("the module's name was looked up through the program's get")

    glob = G(compare=compare, c=c, sys=sys, __name__="odd")
    exec("def f():\n    x = 1\n    return compare(c, sys._getframe())\n", glob)  # noqa: S102
    got, slow = glob["f"]()
    assert got[0][3] == "odd"
    assert slow and slow[0].f_code.co_name == "f"  # (C leaves a subclass to Python)


def test_hidden_frames_are_left_out(c) -> None:
    def hidden_by_registry(fn):
        return fn()

    hide_code(hidden_by_registry.__code__)
    try:

        def hidden_by_local(fn):
            __tracebackhide__ = True  # noqa: F841
            return fn()

        got, _ = hidden_by_local(lambda: hidden_by_registry(lambda: compare(c, sys._getframe())))
    finally:
        HIDDEN.discard(hidden_by_registry.__code__)
        CODES.clear()
    assert "hidden_by_local" not in names(got)
    assert "hidden_by_registry" not in names(got)


def test_code_not_yet_known(c) -> None:
    seen: list = []

    def one(frame: FrameType, context: int) -> Any:
        seen.append(frame.f_code)
        return capture._one_record(frame, context)

    def run(m):
        return c.live_records(sys._getframe(), CODES, capture._LINECACHE, 5, one)

    CODES.clear()
    first = _deep(3, run)
    assert _deep.__code__ in seen  # learnt in Python, once per code
    seen.clear()
    again = _deep(3, run)
    assert _deep.__code__ not in seen
    assert names(first) == names(again)


def test_another_threads_frames(c) -> None:
    ready, go = threading.Event(), threading.Event()

    def run(a, b):
        local = [a, b]  # noqa: F841
        ready.set()
        go.wait(10)

    t = threading.Thread(target=run, args=(1, 2))
    t.start()
    try:
        assert ready.wait(10)
        got, _ = compare(c, sys._current_frames()[t.ident])
    finally:
        go.set()
        t.join(10)
    run = [r for r in got if r[0][2] == "run"][0]
    assert _plain(run)["local"] == [1, 2]


def test_leaves_nothing_behind_in_the_frame(c) -> None:
    class Big:
        pass

    def f():
        big = Big()
        ref = weakref.ref(big)
        recs = c.live_records(sys._getframe(), CODES, capture._LINECACHE, 5, capture._one_record)
        del recs, big
        gc.collect()
        return ref() is None

    assert f()


def test_keeps_reference_counts(c) -> None:
    value = object()
    frame = sys._getframe()
    c.live_records(frame, CODES, capture._LINECACHE, 5, capture._one_record)  # (codes learnt)
    before = sys.getrefcount(value), sys.getrefcount(frame), sys.getrefcount(frame.f_code)
    for _ in range(50):
        c.live_records(frame, CODES, capture._LINECACHE, 5, capture._one_record)
    assert (sys.getrefcount(value), sys.getrefcount(frame), sys.getrefcount(frame.f_code)) == (
        before
    )


def test_an_error_in_python_propagates(c) -> None:
    def boom(frame, context):
        raise RuntimeError("slow failed")

    CODES.clear()  # every frame to Python
    with pytest.raises(RuntimeError, match="slow failed"):
        c.live_records(sys._getframe(), CODES, capture._LINECACHE, 5, boom)


def test_capture_exception_same_both_ways(c) -> None:
    """The whole exception context, built, is the same with and without C."""

    def fail(x):
        raise ValueError(x)

    def middle(y):
        keep = {"y": y}  # noqa: F841
        try:
            fail(y)
        except ValueError as exc:
            made = []
            for pure in (False, True):
                saved = capture._c_live_records
                if pure:
                    capture._c_live_records = None
                try:
                    values, trc = capture.capture_exception(
                        exc, exc.__traceback__, sys._getframe(1)
                    )
                finally:
                    capture._c_live_records = saved
                made.append((values, trc))
            return made

    (v1, t1), (v2, t2) = middle(5)
    assert t1["framestack"] == t2["framestack"]
    up1, up2 = v1["__up"], v2["__up"]
    changed = {"made", "pure", "saved", "values", "trc"}  # (middle's, between the two)
    while up1 is not None:
        assert {k: v for k, v in up1.items() if not k.startswith("__") and k not in changed} == {
            k: v for k, v in up2.items() if not k.startswith("__") and k not in changed
        }
        up1, up2 = up1.get("__up"), up2.get("__up")
    assert up2 is None


def test_the_freeze_reads_names_and_values(c) -> None:
    """The pickle_file freeze copies a frame's containers from C's tuple of values,
    keeps None values, and shows no unbound name (C's and Python's holds_watched alike)."""
    from otrace.contexts import freeze

    def f():
        nothing = None
        items = [1]
        recs = c.live_records(sys._getframe(), CODES, capture._LINECACHE, 5, capture._one_record)
        later = 2  # noqa: F841 (unbound when recorded)
        return recs, items, nothing

    code_info(f.__code__)  # (known: read in C)
    recs, items, _ = f()
    loc = recs[0][2]
    assert type(loc) is tuple and speedups.UNBOUND in loc
    assert freeze._holds_watched(loc, freeze._CONTAINERS_OR_CONTEXTS)
    assert freeze._holds(loc, freeze._CONTAINERS_OR_CONTEXTS)
    copies = freeze._raw_copies(recs[:1], freeze.DEFAULT_LIMITS, {})
    assert copies is not None
    copy = copies[0]
    assert copy["nothing"] is None and copy["items"] == [1] and copy["items"] is not items
    assert "later" not in copy and speedups.UNBOUND not in copy.values()
    assert loc_dict(recs[0][0], loc) == {"nothing": None, "items": [1], "c": c}


def test_values_read_with_the_code_infos_names(c) -> None:
    """C keeps a function frame's values only, read with the names of its code info
    (frames.code_info: the code's own, from otrace._frames.local_names); a code info whose
    names are not that very tuple (another order, or none) leaves the frame to Python."""
    slow: list = []

    def one(frame: FrameType, context: int) -> Any:
        slow.append(frame)
        return capture._one_record(frame, context)

    def f(a, b):
        return c.live_records(sys._getframe(), CODES, capture._LINECACHE, 5, one), sys._getframe()

    info = code_info(f.__code__)
    assert info[6] == ("a", "b", "c", "one") == speedups.local_names(f.__code__)
    want = {"a": 1, "b": [2], "c": c, "one": one}
    recs, frame = f(1, [2])
    assert type(recs[0][2]) is tuple and frame not in slow
    assert variables(recs[0]) == want
    try:
        for other in (info[:6] + (("b", "a", "c", "one"),), info[:6] + (None,), info[:6]):
            CODES[id(f.__code__)] = other  # type: ignore[assignment]
            recs, frame = f(1, [2])
            assert frame in slow and type(recs[0][2]) is not tuple
            assert variables(recs[0]) == want
    finally:
        CODES[id(f.__code__)] = info


def test_exec_with_locals_of_its_own(c) -> None:
    """Module-level code run by ``exec(code, g, l)``: its variables are ``l``, not the
    globals -- copied (by Python), not left out as a module's."""
    g: dict = {"compare": compare, "c": c, "sys": sys}
    loc: dict = {"mine": 1}
    exec("out = compare(c, sys._getframe())\n", g, loc)  # noqa: S102
    got, slow = loc["out"]
    assert _plain(got[0]) == {"mine": 1}
    assert slow and slow[0].f_code.co_name == "<module>"


# -- walk ------------------------------------------------------------------------------------


def walks(c, frame: FrameType | None) -> tuple[Any, Any]:
    """C's walk of ``frame`` and the pure loop's (the caller stands still meanwhile)."""
    return c.walk(frame), tuple(python_walk(frame))


def test_walk_plain_stack(c) -> None:
    got, want = _deep(20, lambda m: walks(c, sys._getframe()))
    assert got == want and len(got[0]) > 21


def test_walk_none_and_non_frames(c) -> None:
    assert c.walk(None) == ([], [])
    with pytest.raises(TypeError):
        c.walk(42)


def test_walk_generators_and_coroutines(c) -> None:
    def gen():
        yield walks(c, sys._getframe())

    got, want = next(gen())
    assert got == want and got[0][0] is gen.__code__

    async def inner():
        await asyncio.sleep(0)
        return walks(c, sys._getframe())

    async def outer():
        return await inner()

    got, want = asyncio.run(outer())
    assert got == want and got[0][:2] == [inner.__code__, outer.__code__]


def test_walk_leaves_other_threads_and_finished_frames_alone(c) -> None:
    """None for a frame not running on this thread: another thread's (its callers may
    return meanwhile) or one that has returned."""
    ready, go = threading.Event(), threading.Event()
    t = threading.Thread(target=lambda: (ready.set(), go.wait(10)))
    t.start()
    try:
        assert ready.wait(10)
        assert c.walk(sys._current_frames()[t.ident]) is None
    finally:
        go.set()
        t.join(10)

    def returns():
        return sys._getframe()

    assert c.walk(returns()) is None

    def suspended():
        yield 1

    g = suspended()
    next(g)
    assert c.walk(g.gi_frame) is None
