"""append_traceback (reference §6.10): the exception a caller sees names the outermost traced
function's context and carries the innermost traceback, as a note."""

from __future__ import annotations

import traceback

import pytest

from otrace.tracing import trace
from tests.rt import PARAMS, STORE


def test_off_by_default_nothing_is_added(shop):
    trace(shop.helper)
    with pytest.raises(ZeroDivisionError) as info:
        shop.helper(0)
    assert not getattr(info.value, "__notes__", None)


def test_outermost_id_innermost_traceback_and_a_link(shop):
    PARAMS.set("append_traceback", True)
    trace(shop.helper)
    trace(shop.Cart.boom)
    with pytest.raises(ZeroDivisionError) as info:
        shop.c.boom(0)
    exc = info.value
    inner = STORE.find(["helper:ex-*"])[0]
    outer = STORE.find(["Cart.boom:ex-*"])[0]
    assert exc.args == ("float division by zero",)  # the program's own message is untouched
    assert len(exc.__notes__) == 1
    first, *tb = exc.__notes__[0].splitlines()
    assert first == f"~{outer.id}"
    assert tb[0].strip().startswith('File "') and tb[0].rstrip().endswith("in helper")
    assert "return 1.0 / d" in tb[1]
    assert not any("wrappers.py" in line or "in boom" in line for line in tb)
    assert outer[f"~{inner.id}"] is None  # the link to the inner context
    assert outer["__trc"]["exception"].startswith("ZeroDivisionError: float division by zero\n~")
    printed = "".join(traceback.format_exception(exc))
    assert f"~{outer.id}" in printed and f"~{inner.id}" not in printed


def test_iteration_ends_are_left_alone(shop, monkeypatch):
    PARAMS.set("append_traceback", True)

    def stop():
        raise StopIteration

    monkeypatch.setattr(shop, "stop", stop, raising=False)  # gone after the test
    trace(shop.stop, shop, "stop")
    with pytest.raises(StopIteration) as info:
        shop.stop()
    assert not getattr(info.value, "__notes__", None)
