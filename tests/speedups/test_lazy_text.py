"""``new_text`` (otrace/_speedups.c) makes the text ``lazytext.lazy_text`` makes in Python --
the same class, job and state -- and leaves a class made some other way to Python."""

from __future__ import annotations

import pytest

from otrace.contexts import lazytext
from otrace.contexts.lazytext import LazyText
from tests.speedups.ext import extension


@pytest.fixture(scope="module")
def c():
    return extension("_speedups")


def _python(render, args, safe=None) -> LazyText:
    return lazytext._new_py(render, args, safe)


def _state(text: LazyText) -> tuple:
    return type(text), text._job, text._text


def _upper(s: str) -> str:
    return s.upper()


@pytest.mark.parametrize(
    "call", [(_upper, ("ab",)), (_upper, ("ab",), None), (_upper, ("ab",), str.lower)]
)
def test_the_same_text_as_python(c, call: tuple) -> None:
    made = c.new_text(LazyText, *call)
    assert _state(made) == _state(_python(*call))
    assert made._text is ""  # noqa: F632 (the interpreter's empty str, as Python's literal)
    assert repr(made) == "<text rendered when read>"
    assert made.safe_text() == ("ab" if len(call) == 3 and call[2] else "AB")
    assert str(made) == "AB" and made._job is None


def test_recording_uses_it(c) -> None:
    made = lazytext.lazy_text(_upper, ("ab",), None)
    assert lazytext.lazy_text.func is c.new_text  # type: ignore[attr-defined]
    assert _state(made) == _state(_python(_upper, ("ab",), None))


class _OwnNew(LazyText):
    __slots__ = ()

    def __new__(cls):
        raise AssertionError("the program's __new__ ran")


class _OwnSetattr(LazyText):
    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AssertionError("the program's __setattr__ ran")


def test_declines_a_class_made_another_way(c) -> None:
    for cls in (_OwnNew, _OwnSetattr):
        assert c.new_text(cls, _upper, ("ab",)) is None


def test_arguments(c) -> None:
    for bad in ((), (LazyText, _upper), (1, _upper, ()), (LazyText, _upper, (), None, 1)):
        with pytest.raises(TypeError):
            c.new_text(*bad)
