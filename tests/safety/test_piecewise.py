"""Bounded, piecewise formatting of containers (otrace.contexts.piecewise).

The builtin ``repr`` of a huge container runs as one C call that holds the GIL (the fuzz
suite's stalls); otrace formats them a few items at a time and only the first ones.  Small
containers look exactly as ``repr`` shows them.
"""

from __future__ import annotations

import collections

import pytest

from otrace.contexts import safe_repr, safe_str
from otrace.contexts.piecewise import piecewise_repr


class ListSub(list):
    def __iter__(self):  # the builtin repr does not call it; neither do we
        raise AssertionError("__iter__ called")


class SetSub(set):
    pass


class DictSub(dict):
    def items(self):
        raise AssertionError("items called")


SMALL = [
    [1, "a", None, 2.5, (1,), [], {}],
    (1, 2),
    (),
    {"a": [1, {"b": (2, 3)}], 1: b"x"},
    {1, 2},
    set(),
    frozenset(),
    frozenset({3}),
    collections.defaultdict(list, {"a": [1]}),
    collections.OrderedDict(a=1, b=2),
    collections.OrderedDict(),
    collections.Counter("abbccc"),
    collections.Counter(),
    collections.deque([1, 2]),
    collections.deque([1], maxlen=3),
    ListSub([1, 2]),
    SetSub({1}),
    SetSub(),
    DictSub(a=1),
    [True, 1 + 2j, "quote's"],
]


@pytest.mark.parametrize("value", SMALL, ids=lambda v: type(v).__name__)
def test_small_containers_look_like_repr(value):
    expected = (
        dict.__repr__(value)
        if type(value) is DictSub
        else list.__repr__(value)
        if type(value) is ListSub
        else repr(value)
    )
    assert piecewise_repr(value) == expected
    assert safe_str(value) == expected


def test_huge_containers_show_their_first_items():
    huge = {f"k{i}": i for i in range(1_000_000)}
    text = safe_str(huge, 1_000_000)
    assert text.startswith("{'k0': 0, 'k1': 1,") and text.endswith("'k99': 99, ...}")
    assert safe_repr(list(range(10**6))) == repr(list(range(20)))[:-1] + ", ...]"
    assert safe_repr({i for i in range(10**5)}).endswith(", ...}")
    counter = collections.Counter({i: i for i in range(5000)})
    assert safe_repr(counter).startswith("Counter({0: 0, 1: 1")  # insertion order when huge


def test_bounds_recursion_and_hostile_leaves():
    loop: list = [1]
    loop.append(loop)
    assert piecewise_repr(loop) == repr(loop) == "[1, [...]]"
    assert piecewise_repr([[[[[1]]]]], depth=3) == "[[[[...]]]]"
    assert len(piecewise_repr(["x" * 10_000] * 10, limit=500)) <= 503

    class Exits:
        def __repr__(self):
            raise SystemExit("no")

    assert piecewise_repr([Exits()]) == "[<Exits object; repr failed: SystemExit>]"
    assert safe_repr(10**5000).startswith("<int of ")
