# ruff: noqa: F841  (the locals are what the tests look at)
"""Sample program for the pickle-store tests: builds real trace contexts with odd locals.

Importable from the writing and the reading process (tests put this directory on PYTHONPATH).
"""

from __future__ import annotations

import datetime
import decimal
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass, field

from otrace.contexts.capture import capture_exception
from otrace.contexts.record import TraceContext


@dataclass
class Point:
    x: int
    y: int
    tags: list[str] = field(default_factory=list)


class BadReduce:
    def __reduce__(self):
        raise RuntimeError("no pickling me")

    def __repr__(self) -> str:
        return "<BadReduce>"


def _gen():
    yield 1


def inner(n, extra):
    lock = threading.Lock()
    gen = _gen()
    bad = BadReduce()
    point = Point(n, n * 2, ["a", "b"])
    when = datetime.datetime(2024, 5, 6, 7, 8, 9)
    money = decimal.Decimal("1.25")
    nested = {"a": [1, 2, {"b": (3, 4)}], "s": {1, 2}, "point": point}
    cyclic: list = [1]
    cyclic.append(cyclic)
    deep: list = []
    cur = deep
    for _ in range(100_000):
        nxt: list = []
        cur.append(nxt)
        cur = nxt
    huge = b"x" * 2_000_000
    extra_locals = extra
    return 1 / (n - n)  # ZeroDivisionError


def outer(n, extra=None):
    label = "outer-frame"
    return inner(n, extra)


def make_context(n: int = 3, extra=None, name: str = "Cart.boom") -> TraceContext:
    """Raise in ``inner`` (called through ``outer``) and capture it as an exceptions context."""
    sock = socket.socket()
    fh = tempfile.TemporaryFile()
    try:
        outer(n, extra)
    except ZeroDivisionError as exc:
        values, trc = capture_exception(exc, exc.__traceback__, sys._getframe(), context_lines=3)
        values = dict(values)
        values.setdefault("sock_in_root", sock)
        values.setdefault("file_in_root", fh)
        ctx = TraceContext("exceptions", name, "ZeroDivisionError", values, trc)
        return ctx
    finally:
        sock.close()
        fh.close()
    raise AssertionError("no exception")


def make_simple(i: int, name: str = "Worker.step", kind: str = "traces") -> TraceContext:
    """A small call trace context (bound arguments only)."""
    return TraceContext(
        kind,
        name,
        "call",
        {"i": i, "payload": {"items": list(range(5)), "s": "x" * 20}},
        {"stack": "file.py:1 in step\n"},
    )
