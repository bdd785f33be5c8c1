"""otrace._frames' root of an exception context: ``frame_values`` copies a frame's
variables as ``frames.frame_locals`` does (same names, same order, the same objects) or
declines, and ``exc_line`` gives ``safe.exc_line``'s line for the usual exception or
declines -- never running program code.  Skipped where the extension is not built, unless
``OTRACE_REQUIRE_SPEEDUPS=1``.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import weakref
from types import FrameType
from typing import Any

import pytest

from otrace.contexts import capture, safe, speedups
from otrace.contexts.frames import frame_locals

REQUIRED = os.environ.get("OTRACE_REQUIRE_SPEEDUPS") == "1"


@pytest.fixture(scope="module")
def c():
    if os.environ.get("OTRACE_PURE") == "1":
        pytest.skip("OTRACE_PURE=1: otrace._frames is not used")
    try:
        return importlib.import_module("otrace._frames")
    except ImportError:
        if REQUIRED:
            raise
        pytest.skip("otrace._frames is not built (no compiler or Python headers?)")


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


def test_capture_same_with_and_without_c(c) -> None:
    """The root of an exception context -- its variables in order, its exception line --
    is the same whether C or Python made it."""

    def fail(x, *rest):
        mine = {"x": x}  # noqa: F841
        raise KeyError(x)

    def catch():
        try:
            fail("k", 1)
        except KeyError as exc:
            made = []
            for pure in (False, True):
                saved = capture._c_frame_values, capture._c_exc_line
                if pure:
                    capture._c_frame_values = capture._c_exc_line = None
                try:
                    made.append(capture.capture_exception(exc, exc.__traceback__, sys._getframe(1)))
                finally:
                    capture._c_frame_values, capture._c_exc_line = saved
            return made

    (v1, t1), (v2, t2) = catch()
    assert [k for k in v1 if k != "__up"] == [k for k in v2 if k != "__up"] == ["x", "rest", "mine"]
    assert all(v1[k] is v2[k] for k in ("x", "rest")) and v1["mine"] == v2["mine"]
    assert t1["exception"] == t2["exception"] == "KeyError: 'k'"
    assert list(dict.keys(t1)) == list(dict.keys(t2))
