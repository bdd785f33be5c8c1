"""otrace._frames' root of an exception context: ``frame_values`` copies a frame's
variables as ``frames.frame_locals`` does (same names, same order, the same objects) or
declines, and ``exc_line`` gives ``safe.exc_line``'s line for the usual exception or
declines -- never running program code.  Skipped where the extension is not built, unless
``OTRACE_REQUIRE_SPEEDUPS=1``.
"""

from __future__ import annotations

import gc
import linecache
import sys
import weakref
from types import FrameType
from typing import Any

import pytest

from otrace.contexts import capture, lazy, safe, speedups
from otrace.contexts.frames import CODES, code_info, frame_locals, hide_code
from tests.speedups.ext import extension


@pytest.fixture(scope="module")
def c():
    return extension("_frames")


def test_used_by_capture(c) -> None:
    assert capture._c_frame_values is c.frame_values is speedups.frame_values
    assert capture._c_exc_line is c.exc_line is speedups.exc_line


def same_values(c, frame: FrameType) -> dict[str, Any] | None:
    """C's copy of ``frame``'s variables, checked against frame_locals' (C first: on 3.11
    frame_locals fills the frame's cached dict, and C declines a frame whose dict holds
    something)."""
    got = c.frame_values(frame)
    want = frame_locals(frame)
    if got is not None:
        assert [k for k in got] == [k for k in want]
        assert all(got[k] is want[k] for k in got)
    return got


def test_plain_function_arguments_and_defaults(c) -> None:
    def f(a, b=2, *args, key=None, **kw):
        local = [a]
        return same_values(c, sys._getframe()), local

    got, local = f(1, 3, 4, key="k", extra=5)
    # (c: a free variable of f, the test's fixture)
    assert got is not None and list(got) == ["a", "b", "key", "args", "kw", "local", "c"]
    assert got["args"] == (4,) and got["kw"] == {"extra": 5} and got["local"] is local


def test_cells_free_unbound_and_deleted(c) -> None:
    def outer(arg):
        cell = [1]
        gone = 1
        del gone

        def inner():
            return same_values(c, sys._getframe()), cell, arg

        mine = same_values(c, sys._getframe())
        late = 2  # noqa: F841 (unbound when read)
        return mine, inner()

    mine, (theirs, cell, arg) = outer("x")
    assert mine is not None and theirs is not None
    assert set(mine) == {"arg", "cell", "inner", "c"}  # not gone, not late
    assert theirs == {"arg": "x", "cell": cell, "c": c}


def test_finished_frame_of_a_traceback(c) -> None:
    def fail(x):
        y = [x]  # noqa: F841
        raise ValueError(x)

    try:
        fail(3)
    except ValueError as exc:
        tb = exc.__traceback__
    assert tb is not None and tb.tb_next is not None
    got = same_values(c, tb.tb_next.tb_frame)
    assert got == {"x": 3, "y": [3]}


def test_suspended_generator(c) -> None:
    def gen(n):
        m = n + 1
        yield m

    g = gen(1)
    next(g)
    assert same_values(c, g.gi_frame) == {"n": 1, "m": 2}


def test_declines_module_level_and_locals_called(c) -> None:
    ns: dict = {"c": c, "sys": sys}
    exec("out = c.frame_values(sys._getframe())", ns)  # noqa: S102
    assert ns["out"] is None

    def called_locals():
        x = 1  # noqa: F841
        locals()
        return c.frame_values(sys._getframe())

    if sys.version_info < (3, 13):  # (locals() fills the frame's cached dict: Python reads)
        assert called_locals() is None


@pytest.mark.skipif(sys.version_info < (3, 13), reason="3.13's extra locals")
def test_declines_names_stored_through_f_locals(c) -> None:
    def f():
        frame = sys._getframe()
        frame.f_locals["extra"] = 1
        return c.frame_values(frame)

    assert f() is None


def test_leaves_nothing_behind_in_the_frame(c) -> None:
    class Big:
        pass

    def f():
        big = Big()
        ref = weakref.ref(big)
        got = c.frame_values(sys._getframe())
        assert got is not None and got["big"] is big
        del got, big
        gc.collect()
        return ref() is None

    assert f()


def test_bad_argument(c) -> None:
    with pytest.raises(TypeError):
        c.frame_values(None)


class Odd(str):
    def __str__(self) -> str:  # (program code: must never run)
        raise AssertionError("ran the program's __str__")


class MyError(ValueError):
    def __str__(self) -> str:
        raise AssertionError("ran the program's __str__")


USUAL = [
    ValueError(5),
    ValueError(),
    ValueError(""),
    KeyError("k"),
    RuntimeError("x" * 600),
    ValueError("a", 2, None, b"x", 1.5, True),
    TypeError("line\nbreak"),
    StopIteration(1),
    ValueError("caf\u00e9"),  # (texts of each width: C joins name and text itself)
    ValueError("\u20ac 5"),
    ValueError("\U0001f600", "\u20ac"),
    KeyError("\U0001f600"),
]
DECLINED = [
    OSError(2, "No such file"),
    MyError(1),
    ValueError(Odd("x")),
    ValueError(object()),
    ValueError([1]),
]


@pytest.mark.parametrize("exc", USUAL, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("limit", [500, 10, 0])
def test_exc_line_usual(c, exc: BaseException, limit: int) -> None:
    assert c.exc_line(exc, safe._STATIC_EXC, limit) == safe.exc_line(exc, limit)


@pytest.mark.parametrize("exc", DECLINED, ids=lambda e: type(e).__name__)
def test_exc_line_declines_the_rest(c, exc: BaseException) -> None:
    assert c.exc_line(exc, safe._STATIC_EXC, 500) is None
    assert safe.exc_line(exc, 500)  # (Python's line, made without the program's __str__)


def test_exc_line_declines_args_set_to_something_else(c) -> None:
    exc = ValueError(1)
    exc.args = (Odd("x"),)
    assert c.exc_line(exc, safe._STATIC_EXC, 500) is None
    assert c.exc_line(ValueError(1), {}, 500) is None  # (an unknown class)
    assert c.exc_line(ValueError(1), safe._STATIC_EXC, -1) is None
    with pytest.raises(TypeError):
        c.exc_line(ValueError(1), safe._STATIC_EXC)


def _capture_both(exc: BaseException, caller: FrameType | None) -> list[tuple[Any, Any]]:
    """capture_exception of ``exc`` with otrace._frames, then without (pure Python)."""
    linecache.getlines(__file__)  # (in linecache before either: the records keep its entry)
    made = []
    names = ("_c_exc_root", "_c_live_records", "_c_frame_values", "_c_exc_line")
    for pure in (False, True):
        saved = [getattr(capture, n) for n in names]
        if pure:
            for n in names:
                setattr(capture, n, None)
        try:
            made.append(capture.capture_exception(exc, exc.__traceback__, caller))
        finally:
            for n, v in zip(names, saved, strict=True):
                setattr(capture, n, v)
    return made


def test_capture_same_with_and_without_c(c) -> None:
    """An exception context -- its root's variables in order, its ``__trc`` in order, the raw
    records of its callers, what they build into -- is the same whether C or Python made it."""

    def fail(x, *rest):
        mine = {"x": x}  # noqa: F841
        raise KeyError(x)

    def catch():
        try:
            fail("k", 1)
        except KeyError as exc:
            return exc, _capture_both(exc, sys._getframe(1))

    exc, ((v1, t1), (v2, t2)) = catch()
    assert exc.__traceback__ is not None and exc.__traceback__.tb_next is not None
    try:  # (one frame of traceback: what exc_root reads)
        raise ValueError(3)
    except ValueError as one:
        (v3, t3), (v4, t4) = _capture_both(one, sys._getframe())
    for (a, ta), (b, tb) in (((v1, t1), (v2, t2)), ((v3, t3), (v4, t4))):
        assert list(a) == list(b) and list(a)[-1] == "__up"
        assert all(a[k] is b[k] or a[k] == b[k] for k in a if k != "__up")
        assert list(dict.keys(ta)) == list(dict.keys(tb))
        for key in ("frame", "funcname", "module", "argvalues", "exception"):
            assert dict.__getitem__(ta, key) == dict.__getitem__(tb, key), key
        raws_a, raws_b = lazy.raw_records(a), lazy.raw_records(b)
        assert raws_a is not None and raws_b is not None and raws_a[1] == raws_b[1]
        assert len(raws_a[0]) == len(raws_b[0])
        for ra, rb in zip(raws_a[0], raws_b[0], strict=True):
            assert ra[0] is rb[0] and ra[1] == rb[1] and ra[3] == rb[3] and ra[4] is rb[4]
            la, lb = lazy.loc_dict(ra[0], ra[2]), lazy.loc_dict(rb[0], rb[2])
            assert (la is None) == (lb is None)
            assert la is None or la.keys() == lb.keys()
        assert ta["framestack"] == tb["framestack"] and ta["where"] == tb["where"]
    assert t1["exception"] == "KeyError: 'k'" and t3["exception"] == "ValueError: 3"
    assert v3["__up"] is not None and t3["argvalues"] == (["c"], None, None)


def _raised(fn: Any, *args: Any) -> BaseException:
    try:
        fn(*args)
    except Exception as exc:
        return exc
    raise AssertionError("did not raise")


def _root_of(c, exc: BaseException, caller: Any = None, context: int = 5, load: bool = True) -> Any:
    if load:  # (its source in linecache, as an imported module's is)
        linecache.getlines(__file__)
    return c.exc_root(
        exc.__traceback__,
        caller if caller is not None else sys._getframe(1),
        CODES,
        capture._LINECACHE,
        context,
        capture._one_record,
        lazy.LazyFrame,
        lazy.LazyTrc,
        capture._record,
    )


def test_exc_root_reads_a_traceback_of_one_frame(c) -> None:
    def fail(x):
        raise ValueError(x)

    try:
        fail(1)
    except ValueError as exc:
        inner = exc.__traceback__
        assert inner is not None and inner.tb_next is not None
        exc.__traceback__ = inner.tb_next  # (as the traced function's own handler sees it)
        code_info(fail.__code__)
        got = _root_of(c, exc)
    assert got is not None
    values, trc = got
    up = values.pop("__up")
    assert values == {"x": 1} and type(up) is lazy.LazyFrame and type(trc) is lazy.LazyTrc
    assert trc._pending is up
    keys = ["frame", "funcname", "module", "framestack", "where", "argvalues"]
    assert list(dict.keys(trc)) == keys
    info, name, module, framestack, where, argvalues = (dict.__getitem__(trc, k) for k in keys)
    assert name == "fail" and module == __name__ and framestack is None and where is None
    assert info[:3] == (fail.__code__.co_filename, fail.__code__.co_firstlineno + 1, "fail")
    assert info[3] is not None and "raise ValueError(x)" in "".join(info[3])
    assert argvalues == (["x"], None, None)
    pending = lazy.raw_records({"__up": up})
    assert pending is not None and pending[1] == 5
    raws = pending[0]
    assert raws[-1][0][2] == "test_exc_root_reads_a_traceback_of_one_frame"
    assert trc["where"].endswith("-->test_exc_root_reads_a_traceback_of_one_frame-->fail")


def test_exc_root_bad_arguments(c) -> None:
    exc = _raised(lambda: 1 / 0)
    with pytest.raises(TypeError):
        c.exc_root(exc.__traceback__, None, CODES, capture._LINECACHE, 5, None, int, dict)
    with pytest.raises(TypeError):
        c.exc_root(exc.__traceback__, None, CODES, capture._LINECACHE, 5, None)


def test_exc_root_declines(c) -> None:
    def two():
        return one()

    def one():
        raise ValueError(1)

    def hidden():
        __tracebackhide__ = True  # noqa: F841
        raise ValueError(2)

    exc = _raised(two)
    assert exc.__traceback__ is not None
    exc.__traceback__ = exc.__traceback__.tb_next  # two's frame, then one's: two frames
    for code in (two.__code__, one.__code__, hidden.__code__):
        code_info(code)
    assert _root_of(c, exc) is not None  # (read: see test_exc_root_frames_above_the_root)
    via = _raised(lambda: hidden())  # (a frame to ask its __tracebackhide__: Python's)
    code_info(via.__traceback__.tb_next.tb_frame.f_code)  # type: ignore[union-attr]
    assert _root_of(c, via) is None
    shown = _raised(one)
    shown.__traceback__ = shown.__traceback__.tb_next  # type: ignore[union-attr]
    assert _root_of(c, shown) is not None
    assert _root_of(c, shown, context=0) is None  # (no source wanted: Python's way)
    hid = _raised(hidden)
    hid.__traceback__ = hid.__traceback__.tb_next  # type: ignore[union-attr]
    assert _root_of(c, hid) is None
    CODES.pop(id(one.__code__))  # (not known yet)
    assert _root_of(c, shown) is None
    code_info(one.__code__)
    saved = capture._LINECACHE.pop(one.__code__.co_filename)  # (source not in linecache)
    try:
        assert _root_of(c, shown, load=False) is None
    finally:
        capture._LINECACHE[one.__code__.co_filename] = saved
    assert _root_of(c, ValueError(1)) is None  # (no traceback)
    top = _raised(one)
    top.__traceback__ = top.__traceback__.tb_next  # type: ignore[union-attr]
    assert (
        c.exc_root(
            top.__traceback__,
            None,
            CODES,
            capture._LINECACHE,
            5,
            None,
            lazy.LazyFrame,
            lazy.LazyTrc,
            capture._record,
        )
        is None
    )  # (no caller: Python's way)


def test_exc_root_declines_a_frame_with_program_globals(c) -> None:
    class Globals(dict):
        def get(self, *args: Any) -> Any:
            raise AssertionError("ran the program's get")

    ns = Globals(__name__="progmod")
    exec("def f():\n    raise ValueError(1)\n", ns)  # noqa: S102
    exc = _raised(ns["f"])
    exc.__traceback__ = exc.__traceback__.tb_next  # type: ignore[union-attr]
    code_info(ns["f"].__code__)
    assert _root_of(c, exc) is None
    values, trc = capture.capture_exception(exc, exc.__traceback__, sys._getframe())
    assert trc["module"] == "progmod"


def test_exc_root_frames_above_the_root(c) -> None:
    """A traceback of several frames: the root is the innermost shown, the frames shown
    above it are recorded by capture._record (unwound, all but the catching one), hidden
    ones are left out -- as the Python code does."""

    def catching():
        try:
            return middle(1)
        except ValueError as exc:
            return exc, _capture_both(exc, sys._getframe(1))

    def middle(n):
        kept = [n]  # noqa: F841
        return skipped(n)

    def skipped(n):
        return raising(n)

    def raising(n):
        mine = n + 1  # noqa: F841
        raise ValueError(n)

    hide_code(skipped.__code__)
    for fn in (catching, middle, skipped, raising):
        code_info(fn.__code__)
    exc, ((v1, t1), (v2, t2)) = catching()
    assert _root_of(c, exc) is not None
    assert list(v1) == list(v2) == ["n", "mine", "__up"]
    assert dict.__getitem__(t1, "frame") == dict.__getitem__(t2, "frame")
    raws1, raws2 = lazy.raw_records(v1), lazy.raw_records(v2)  # (before reading where)
    assert raws1 is not None and raws2 is not None
    assert [r[0][2] for r in raws1[0]][-2:] == ["catching", "middle"]
    for r1, r2 in zip(raws1[0], raws2[0], strict=True):
        assert r1[0] is r2[0] and r1[1] == r2[1] and r1[3] == r2[3] and r1[4] is r2[4]
        assert lazy.loc_dict(r1[0], r1[2]) == lazy.loc_dict(r2[0], r2[2])
    assert lazy.variables(raws1[0][-1]) == {"n": 1, "kept": [1], "skipped": skipped}
    assert t1["where"] == t2["where"] and t1["where"].endswith("-->catching-->middle-->raising")
