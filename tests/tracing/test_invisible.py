"""A traced function is invisible to the program (issue 20, causes 1-7).

Each test reproduces one way tracing used to show through; the in-place back end must pass
them all.  Where the wrapper back end cannot (a wrapper is another object and another frame),
the test says so and runs in place only.
"""

from __future__ import annotations

import gc
import inspect
import linecache
import pickle
import warnings

import pytest

from otrace.contexts.lazytext import LazyText
from otrace.contexts.record import FrameContext
from otrace.errors import TraceError
from otrace.tracing import trace, untrace
from tests.rt import PARAMS, STORE
from tests.tracing import invisible as prog

pytestmark = pytest.mark.timeout(30)
MODES = ["", "n==-1"]  # exceptions only; a condition that never matches


def in_place_only(backend: str) -> None:
    if backend == "wrapper":
        pytest.skip("a wrapper is another object and another frame: in place only")


@pytest.mark.parametrize("condition", MODES)
def test_1_arguments_are_not_kept_alive(backend, condition):
    in_place_only(backend)
    trace(prog.drops, prog, "drops", condition=condition.replace("n", "obj"))
    died = prog.drops(prog.Thing())  # (no assert rewriting holding the argument)
    assert died


def test_2_no_frame_on_the_stack(backend):
    in_place_only(backend)
    trace(prog.who_called, prog, "who_called", condition="call")
    trace(prog.warn_caller, prog, "warn_caller")
    assert prog.call_who() == "call_who"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prog.call_warn()
    (w,) = caught
    assert w.filename == prog.__file__
    assert "the warning's line" in linecache.getline(w.filename, w.lineno)


def test_3_contexts_leave_no_cyclic_garbage_and_repr_does_not_render():
    PARAMS.set("max_recent", 1)
    trace(prog.raiser, prog, "raiser")
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for n in range(3):  # every new context evicts the previous one
            with pytest.raises(ValueError):
                prog.raiser(n)
        gc.collect()
        garbage = [g for g in gc.garbage if isinstance(g, (FrameContext, LazyText))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert garbage == []
    (ctx,) = STORE.recent["exceptions"]["raiser"]["ex-ValueError"].values()
    report = ctx.trc["exc_context"]
    assert repr(report) == "<text rendered when read>"
    assert "bad 2" in str(report) and len(repr(report)) < 300


def test_4_capture_keeps_no_old_locals_of_live_callers():
    trace(prog.raiser, prog, "raiser")
    assert prog.keeps_no_locals(STORE.clear)


def test_5_recording_runs_no_program_code_and_does_not_re_enter():
    trace(prog.Loud, condition="call")
    loud, other = prog.Loud(), prog.Loud()
    prog.Loud.calls = 0
    assert loud.take(other) is False
    assert prog.Loud.calls == 0
    assert list(STORE.recent["traces"]) == ["Loud.take"]
    ctx = next(iter(STORE.recent["traces"]["Loud.take"]["tr-call"].values()))
    assert "Loud object at 0x" in str(ctx.trc["argstr"])
    # asked for: str() of the value runs the program's code, whose traced call is not recorded
    # (tracing does not trace itself) -- only when tracing is what calls it
    str(loud)
    assert prog.Loud.calls == 1 and "Loud.describe" in STORE.recent["traces"]


def test_6_no_console_means_nothing_on_stderr(capfd):
    trace(prog.raiser, prog, "raiser", condition="call")
    with pytest.raises(ValueError):
        prog.raiser(1)
    assert STORE.recent["exceptions"] and STORE.recent["traces"]
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_7_introspection_sees_the_function(backend):
    in_place_only(backend)
    before = inspect.getfullargspec(prog.argspec_target)
    ref = pickle.dumps(prog.argspec_target)
    code = prog.argspec_target.__code__
    for target in (prog.argspec_target, prog.gen, prog.coro):
        trace(target, prog, target.__name__, condition="call")
    assert inspect.getfullargspec(prog.argspec_target) == before
    assert (
        prog.argspec_target.__code__.co_varnames[: code.co_argcount]
        == code.co_varnames[: code.co_argcount]
    )
    assert prog.argspec_target.__defaults__ == (None,) and prog.argspec_target.__kwdefaults__ == {
        "key": 1
    }
    assert pickle.loads(ref) is prog.argspec_target
    g = prog.gen(1, 2)
    assert g.gi_code.co_name == "gen" and g.__qualname__ == "gen" and list(g) == [1, 2]
    c = prog.coro(1)
    assert c.cr_code.co_name == "coro"
    c.close()
    with pytest.raises(TypeError):
        prog.gen(1)  # a bad call fails at the call, as untraced
    with pytest.raises(TypeError):
        prog.coro()


def test_exceptions_the_caller_catches_by_class_are_skipped():
    trace(prog.Box)
    box = prog.Box({"a": 1})
    assert box.get("a") == 1 and box.get("zz") is None
    assert "exceptions" not in STORE.recent  # KeyError handled by get's except KeyError
    assert box.get_loose("zz") is None  # a catch-all is error handling: recorded
    assert list(STORE.recent["exceptions"]) == ["Box.__getitem__"]
    STORE.clear()
    PARAMS.set("trace_handled", True)
    assert box.get("zz") is None
    assert list(STORE.recent["exceptions"]) == ["Box.__getitem__"]


def test_lru_cache_and_cached_property_are_traced_in_place(backend):
    in_place_only(backend)
    wrapper = prog.cached
    spec = trace(prog.cached, prog, "cached", condition="call")
    assert prog.cached is wrapper and prog.cached(3) == 6 and prog.cached(3) == 6
    assert len(STORE.recent["traces"]["cached"]["tr-call"]) == 1  # a hit never runs it
    assert not spec.warnings
    untrace("cached")
    trace(prog.Lazy, condition="call")
    assert prog.Lazy().value == 42 and "Lazy.value" in STORE.recent["traces"]
    untrace(prog.Lazy)
    spec = trace(prog)
    assert not any("skipped" in w for w in spec.warnings)
    with pytest.raises(ValueError):
        prog.cached(-1)
    assert "cached" in STORE.recent["exceptions"]


def test_cached_function_without_source_is_refused_with_the_reason(backend):
    import functools

    ns: dict = {}
    exec("def f(n):\n    return n\n", ns)  # no source file
    prog.nosource = functools.lru_cache(ns["f"])
    prog.nosource.__module__ = prog.__name__
    try:
        with pytest.raises(TraceError, match="lru_cache.*cannot be instrumented in place"):
            trace(prog.nosource, prog, "nosource")
    finally:
        del prog.nosource


def test_one_function_under_two_names_is_traced_once_in_place(backend):
    in_place_only(backend)
    prog.Box.fetch = prog.Box.__getitem__  # the same function object, a second name
    try:
        spec = trace(prog.Box, condition="call")
        assert prog.Box.fetch is prog.Box.__getitem__  # no wrapper on either name
        assert any("same function" in w for w in spec.warnings)
        assert prog.Box({"a": 1}).fetch("a") == 1
        assert list(STORE.recent["traces"]["Box.__getitem__"]["tr-call"])
    finally:
        untrace(prog.Box)
        del prog.Box.fetch


def test_edit_changes_the_signature_below_a_trace(backend):
    from otrace.tracing import patching

    original = prog.resized
    trace(prog.resized, prog, "resized", condition="scale==3")
    trace(prog.Shape, condition="h==2")
    try:
        patching.patch(
            prog,
            "resized",
            "def resized(width, height, scale=1):\n    return (width + height) * scale\n",
        )
        patching.patch(prog.Shape, "area", "def area(self, w, h=1):\n    return w * h\n")
        assert prog.resized(1, 2, scale=3) == 9 and prog.resized(1, 2) == 3  # the new arguments
        assert prog.Shape().area(3, h=2) == 6
        (ctx,) = STORE.recent["traces"]["resized"]["tr-scale==3"].values()
        assert ctx["height"] == 2 and ctx.trc["return_value"] == 9
        (ctx,) = STORE.recent["traces"]["Shape.area"]["tr-h==2"].values()
        assert ctx["w"] == 3
        if backend == "inplace":
            assert prog.resized is original
    finally:
        patching.unpatch_all()
    assert prog.resized(2, scale=3) == 6  # the original signature, still traced
    assert len(STORE.recent["traces"]["resized"]["tr-scale==3"]) == 2
    untrace("resized")
    assert prog.resized.__code__ is original.__code__ and prog.resized(2) == 2


def test_handled_is_decided_up_the_stack_past_cleanups():
    trace(prog.inner_raise, prog, "inner_raise")
    trace(prog.middle, prog, "middle")
    assert prog.outer_specific() == "handled"
    assert "exceptions" not in STORE.recent  # caught by class two frames up
    assert prog.outer_catch_all() == "error page"
    assert sorted(STORE.recent["exceptions"]) == ["inner_raise", "middle"]
    STORE.clear()
    trace(prog.write_some, prog, "write_some")
    assert prog.handle_write() == "later"  # the enclosing try of the same frame catches it
    assert "exceptions" not in STORE.recent
