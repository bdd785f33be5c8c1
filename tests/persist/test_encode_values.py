"""What :func:`encode` stores for each kind of value, wherever it sits -- a frame's variables,
a list, a tuple, a dict, ``__trc`` -- so that the writer's short cuts for numbers and short
strings never store what the general path would refuse (a string over ``max_value_bytes``)
nor keep a key the reader could not load."""

from __future__ import annotations

import threading

from otrace.contexts.freeze import Limits
from otrace.contexts.record import TraceContext
from otrace.contexts.sanitize import Unpicklable, decode, encode, freeze_context

LIMITS = Limits(max_value_bytes=40)
LONG = "L" * 41
SHORT = "s" * 40


class Thing:
    pass


def _round_trip(values: dict, trc: dict, limits: Limits = LIMITS) -> TraceContext:
    ctx = TraceContext("traces", "Enc.case", "x", values, trc)
    out: list = []
    # (frozen on a thread of its own, as the traced thread does)
    thread = threading.Thread(target=lambda: out.append(freeze_context(ctx, 1, limits)))
    thread.start()
    thread.join(10)
    data = encode(out[0], limits)
    return decode(data, key=ctx.id, kind=ctx.kind, created=ctx.created)


def _too_large(value) -> bool:
    return isinstance(value, Unpicklable) and "too large" in value.reason


def test_numbers_and_strings_everywhere_and_long_strings_refused():
    numbers = [0, -7, 2**70, 1.5, True, None]
    values = {
        "short": SHORT,
        "long": LONG,
        "numbers": list(numbers),
        "in_list": [SHORT, LONG, 3],
        "in_tuple": (LONG, SHORT, None),
        "in_dict": {"a": LONG, "b": SHORT, "c": 2.5},
        "keys": {1: "one", 2.5: "half", None: "none", (1, "a"): "pair", b"k": LONG},
    }
    values.update({f"n{i}": n for i, n in enumerate(numbers)})
    trc = {"note": SHORT, "big": LONG, "count": 3, "flag": False, "nothing": None}
    got = _round_trip(values, trc)
    assert got["short"] == SHORT and _too_large(got["long"])
    assert got["numbers"] == numbers and [got[f"n{i}"] for i in range(6)] == numbers
    assert got["in_list"][0] == SHORT and _too_large(got["in_list"][1]) and got["in_list"][2] == 3
    assert type(got["in_tuple"]) is tuple and _too_large(got["in_tuple"][0])
    assert got["in_tuple"][1:] == (SHORT, None)
    assert _too_large(got["in_dict"]["a"]) and got["in_dict"]["b"] == SHORT
    assert got["in_dict"]["c"] == 2.5
    keys = got["keys"]
    assert keys[1] == "one" and keys[2.5] == "half" and keys[None] == "none"
    assert keys[(1, "a")] == "pair" and _too_large(keys[b"k"])
    assert got.trc["note"] == SHORT and _too_large(got.trc["big"])
    assert got.trc["count"] == 3 and got.trc["flag"] is False and got.trc["nothing"] is None


def test_program_objects_as_keys_and_values_are_stored_as_text_or_pickled():
    thing = Thing()
    got = _round_trip({"obj": thing, "table": {thing: 1, "k": [thing]}}, {}, Limits())
    keys = list(got["table"])
    assert isinstance(keys[0], str) and "Thing object" in keys[0]  # a key kept as its text
    assert type(got["obj"]).__name__ == "Thing" and got["table"]["k"][0] is got["obj"]
