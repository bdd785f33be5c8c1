"""A captured frame still running keeps its variables as they were at the capture: what the
program rebinds, deletes or first binds afterwards (directly or through a closure's cell)
never shows in the context -- read when built later, built at capture, or stored with
``pickle_file`` (frozen at the capture, written afterwards).  On every version: 3.13's
FrameLocalsProxy is kept as its (name, value) pairs, earlier versions' dict as a copy."""

from __future__ import annotations

import sys

import pytest

from otrace.contexts.capture import build_chain, capture_exception
from otrace.contexts.frames import outer_frames, traceback_frames
from otrace.contexts.record import FrameContext, TraceContext
from otrace.contexts.sanitize import decode, encode, freeze_context

pytestmark = pytest.mark.timeout(60)


def _raise(n):
    raise KeyError(n)


def _catch(seen):
    mine = "caught"
    try:
        _raise(1)
    except KeyError as exc:
        frames = list(reversed(outer_frames(sys._getframe(1)))) + traceback_frames(
            exc.__traceback__
        )
        lazy = capture_exception(exc, exc.__traceback__, sys._getframe(1))
        eager = build_chain(frames, context_lines=0, deep=False)
        ctx = TraceContext("exceptions", "Snap.lazy", "KeyError", *lazy)
        seen.append((ctx, freeze_context(ctx, 1), eager))
    mine = "changed"  # noqa: F841  (rebound after the capture: must not show)


def _running(seen):
    """The frame still running when ``_catch`` captures; it goes on changing its variables."""
    counter = 0

    def bump():
        nonlocal counter
        counter += 1

    x = "before"
    gone = [1]
    bump()
    _catch(seen)
    x = "after"  # noqa: F841
    del gone
    late = 1  # noqa: F841  (unbound when captured)
    bump()
    # a later read of its variables (another capture, a debugger): before 3.13 it refreshes
    # the dict the frame caches, which a context must not be holding
    locals()
    return counter


def _frame(root, funcname):
    node = root
    while isinstance(node, FrameContext):
        if node["__trc"]["funcname"] == funcname:
            return node
        node = node.get("__up")
    raise AssertionError(f"no frame {funcname}")


def _stored(ctx, snap):
    return decode(encode(snap), key=ctx.id, kind=ctx.kind, created=ctx.created)


def test_variables_changed_after_the_capture_read_as_captured():
    seen: list = []
    assert _running(seen) == 2  # the frame did change its variables afterwards
    (ctx, snap, (eager_values, eager_trc)) = seen[0]
    eager = TraceContext("exceptions", "Snap.eager", "KeyError", eager_values, eager_trc)
    stored = _stored(ctx, snap)  # written after the changes, as the writer thread does
    for name, root in (("lazy", ctx), ("eager", eager), ("stored", stored)):
        outer = _frame(root, "_running")
        assert outer["x"] == "before", name
        assert outer["gone"] == [1], name
        assert "late" not in outer, name
        assert outer["counter"] == 1, name  # a cell, rebound by the closure afterwards
        assert _frame(root, "_catch")["mine"] == "caught", name
        assert root["n"] == 1, name


def _capture_beside_copy(seen, item):
    try:
        raise KeyError(item)
    except KeyError as exc:
        caller = sys._getframe(1)
        values, trc = capture_exception(exc, exc.__traceback__, caller)
        seen.append((TraceContext("exceptions", "Snap.pairs", "KeyError", values, trc), caller))
        seen.append(caller.f_locals.copy())  # the proxy's own copy, at the same moment
    return item


def _proxy_running(seen):
    kept = "in a cell"

    def closure():
        return kept

    sys._getframe().f_locals["extra"] = 5  # an extra variable, written through the proxy
    return [_capture_beside_copy(seen, w) for w in ("an inlined comprehension's",)]


@pytest.mark.skipif(sys.version_info < (3, 13), reason="a FrameLocalsProxy from 3.13")
def test_a_frames_pairs_read_as_the_proxys_copy():
    """From 3.13 a running frame's variables are kept as the proxy's (name, value) pairs: they
    read as its ``copy()`` -- cells, an inlined comprehension's variable, extra variables."""
    seen: list = []
    _proxy_running(seen)
    (ctx, _), want = seen
    got = _frame(ctx, "_proxy_running")
    assert {k: v for k, v in got.items() if k not in ("__up", "__down", "__trc")} == want
    assert want["kept"] == "in a cell" and want["extra"] == 5
    assert want["w"] == "an inlined comprehension's"


def test_a_capture_inside_a_trace_function_leaves_the_traced_frame_its_variables():
    # While a trace function runs for a frame, the interpreter writes that frame's f_locals
    # dict back into its variables when the call returns (before 3.13): a capture inside
    # the call (pdb evaluating a traced function) must not empty the dict, or the frame
    # loses every variable (3.11: unbound, 3.12: None).
    try:
        raise ValueError(7)
    except ValueError as caught:
        exc = caught
    seen = []

    def tracer(frame, event, arg):
        if frame.f_code is traced.__code__:
            if event == "line" and not seen and frame.f_lineno == first + 3:
                seen.append(capture_exception(exc, exc.__traceback__, sys._getframe()))
            return tracer
        return None

    def traced():
        a = 1
        b = "x"
        c = [a, b]  # (the capture runs before this line)
        return a, b, c

    first = traced.__code__.co_firstlineno
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        got = traced()
    finally:
        sys.settrace(previous)
    assert got == (1, "x", [1, "x"])
    values, _ = seen[0]
    frame = values["__up"]  # the tracer's frame, then the traced one
    assert {k: frame["__up"][k] for k in ("a", "b")} == {"a": 1, "b": "x"}
