"""A chained exception's causes survive pickling: stored, read back, browsable, and shown
as their own groups of frames on a (post-mortem) traceback page."""

from __future__ import annotations

import sys

from otrace.contexts.capture import capture_exception
from otrace.contexts.record import FrameContext, TraceContext
from otrace.contexts.sanitize import decode, encode, freeze_context
from otrace.web.traceback_core import open_session


def parse(text):
    digits = text.strip()
    return int(digits)


def load(text):
    try:
        return parse(text)
    except ValueError as exc:
        raise LookupError(f"no amount in {text!r}") from exc


def handle(text):
    try:
        load(text)
    except LookupError:
        fallback = None
        return fallback.total  # raised while handling the LookupError


def captured() -> TraceContext:
    try:
        handle("x9")
    except AttributeError as exc:
        values, trc = capture_exception(exc, exc.__traceback__, sys._getframe())
    return TraceContext("exceptions", "handle", "AttributeError", values, trc)


def test_cause_chain_round_trip():
    ctx = captured()
    assert ctx.trc["exc_chain"] == [
        ("__cause__", "ValueError: invalid literal for int() with base 10: 'x9'"),
        ("__context__", "LookupError: no amount in 'x9'"),
    ]
    data = encode(freeze_context(ctx, pid=1))
    back = decode(data, key=ctx.id, kind=ctx.kind, created=ctx.created)
    lookup = back["__context__"]
    assert isinstance(lookup, FrameContext)
    assert lookup["__trc"]["exception"] == "LookupError: no amount in 'x9'"
    assert lookup["text"] == "x9" and lookup["__up"]["text"] == "x9"  # load, then handle
    value_error = lookup["__cause__"]
    assert value_error["digits"] == "x9" and value_error["__trc"]["relation"] == "__cause__"
    assert value_error["__up"]["__trc"]["funcname"] == "load"

    page = open_session(back, live=False)
    titles = [g.title for g in page.frame_groups()]
    assert titles[:2] == [
        "ValueError: invalid literal for int() with base 10: 'x9'",
        "LookupError: no amount in 'x9'",
    ]
    assert [g.relation for g in page.frame_groups()] == ["__cause__", "__context__", ""]
    parse_frame = page.frames[page.frame_groups()[0].end - 1]
    assert parse_frame.funcname == "parse" and parse_frame.locals["digits"] == "x9"
