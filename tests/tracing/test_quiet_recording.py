"""With nobody to tell -- no console, no handler on the ``otrace.announce`` logger -- a call
context's argument text is made when first read, from the values the context keeps; with a
listener it is made at the call and announced."""

from __future__ import annotations

import logging
import sys

import pytest

from otrace.contexts.lazytext import LazyText
from otrace.tracing import trace
from tests.rt import STORE

pytestmark = pytest.mark.timeout(30)


def pay(order, amount, note="x"):
    return amount


def _only():
    (ctx,) = STORE.recent["traces"]["pay"]["tr-call"].values()
    return ctx


@pytest.fixture
def quiet(runtime, monkeypatch):
    """No Announcement subscriber and no handler: logging's last resort only (WARNING+)."""
    log = logging.getLogger("otrace.announce")
    monkeypatch.setattr(log, "handlers", [])
    monkeypatch.setattr(log, "propagate", False)
    return runtime


def test_unheard_argument_text_is_made_when_read(quiet):
    assert not quiet.recorder.heard()
    trace(sys.modules[__name__].pay, sys.modules[__name__], "pay", condition="call")
    opts = {"fast": True}
    assert pay(opts, 5) == 5
    text = _only().trc["argstr"]
    assert type(text) is LazyText and repr(text) == "<text rendered when read>"
    opts["late"] = 1  # shown as the context's values show it: the same dict
    assert str(text) == "order={'fast': True, 'late': 1}, amount=5, note=x"


def test_unheard_with_deep_copy_shows_the_call_time_values(quiet):
    quiet.params.set("deep_copy", True)
    trace(sys.modules[__name__].pay, sys.modules[__name__], "pay", condition="call")
    opts = {"fast": True}
    pay(opts, 5)
    opts["late"] = 1
    assert str(_only().trc["argstr"]) == "order={'fast': True}, amount=5, note=x"


def test_heard_argument_text_is_made_at_the_call_and_announced(runtime, announced):
    assert runtime.recorder.heard()
    trace(sys.modules[__name__].pay, sys.modules[__name__], "pay", condition="call")
    opts = {"fast": True}
    pay(opts, 5)
    opts["late"] = 1
    ctx = _only()
    assert ctx.trc["argstr"] == "order={'fast': True}, amount=5, note=x"
    assert announced == [f"{ctx.id} order={{'fast': True}}, amount=5, note=x"]


def test_heard_follows_the_announce_loggers_handlers_and_level(quiet):
    log = logging.getLogger("otrace.announce")
    recorder = quiet.recorder
    assert not recorder.heard(logging.INFO)
    assert recorder.heard(logging.WARNING)  # logging's last resort prints it
    handler = logging.NullHandler()
    log.addHandler(handler)
    try:
        assert recorder.heard(logging.INFO) == log.isEnabledFor(logging.INFO)
        log_level = log.level
        log.setLevel(logging.DEBUG)
        try:
            assert recorder.heard(logging.INFO)
        finally:
            log.setLevel(log_level)
    finally:
        log.removeHandler(handler)


class Basket:
    def __deepcopy__(self, memo):
        return Basket()

    def add(self, item):
        return item


def test_unheard_with_deep_copy_shows_the_arguments_only(quiet):
    """deep_copy keeps a copy of ``self`` as ``self_copy`` beside it: not an argument."""
    quiet.params.set("deep_copy", True)
    trace(Basket.add, Basket, "add", condition="call")
    Basket().add("pear")
    (ctx,) = STORE.recent["traces"]["Basket.add"]["tr-call"].values()
    assert "self_copy" in ctx
    text = str(ctx.trc["argstr"])
    assert text.startswith("self=<") and text.endswith(", item=pear") and "self_copy" not in text
