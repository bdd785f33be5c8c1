"""The C steps of the ``pickle_file`` freeze (otrace/_speedups.c: ``frames_holding``,
``freeze_value``, ``freeze_entries``) give what their pure-Python versions in
otrace.contexts.freeze give -- the same copies, the same objects kept, the same sharing
through the memo -- on random nested values with self-references, subclasses of the built-in
containers, trace contexts and hostile program objects (none of whose methods may run), under
every limit.  Skipped where the extension is not built, unless ``OTRACE_REQUIRE_SPEEDUPS=1``.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otrace.contexts import freeze
from otrace.contexts.lazy import LazyTrc
from otrace.contexts.record import FrameContext, TraceContext
from otrace.contexts.unpickle import Unpicklable
from tests.speedups.ext import extension


@pytest.fixture(scope="module")
def c():
    return extension("_speedups", unused_when_pure=False)


HOW = freeze._HOW
RAN: list[str] = []


class Hostile:
    """While armed, every special method the freeze might be tempted to call records itself
    and stops (unarmed, pytest and hypothesis may look at it)."""

    armed = False

    def _ran(self, name: str) -> Any:
        RAN.append(name)
        raise SystemExit(name)

    def __repr__(self) -> str:
        return self._ran("__repr__") if Hostile.armed else "<Hostile>"

    def __eq__(self, other: object) -> bool:
        return self._ran("__eq__") if Hostile.armed else self is other

    def __hash__(self) -> int:
        return self._ran("__hash__") if Hostile.armed else id(self) >> 4

    def __len__(self) -> int:
        return self._ran("__len__")

    def __iter__(self) -> Any:
        return self._ran("__iter__")

    def __getattr__(self, name: str) -> Any:
        if Hostile.armed:
            return self._ran(name)
        raise AttributeError(name)


class _Meta(type):
    def __hash__(cls) -> int:
        RAN.append("metaclass __hash__")
        raise SystemExit

    def __eq__(cls, other: object) -> bool:
        RAN.append("metaclass __eq__")
        raise SystemExit


class _Odd(metaclass=_Meta):
    pass


class _Calm(metaclass=type("_CalmMeta", (type,), {})):
    pass


class Dict(dict):
    def __iter__(self) -> Any:
        RAN.append("Dict.__iter__")
        raise SystemExit

    def keys(self) -> Any:
        RAN.append("Dict.keys")
        raise SystemExit

    def items(self) -> Any:
        RAN.append("Dict.items")
        raise SystemExit

    def __getitem__(self, key: object) -> Any:
        RAN.append("Dict.__getitem__")
        raise SystemExit

    def __len__(self) -> int:
        RAN.append("Dict.__len__")
        raise SystemExit


class List(list):
    def __iter__(self) -> Any:
        RAN.append("List.__iter__")
        raise SystemExit

    def __len__(self) -> int:
        RAN.append("List.__len__")
        raise SystemExit


class Key(str):
    """A program's str: hashing or comparing it is its code."""

    def __hash__(self) -> int:
        if Hostile.armed:
            RAN.append("Key.__hash__")
            raise SystemExit
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        if Hostile.armed:
            RAN.append("Key.__eq__")
            raise SystemExit
        return str.__eq__(self, other)


H = Hostile()
ODD = _Odd()
CTX = FrameContext({"x": 1}, {"funcname": "f"})


def _walk(obj: Any, seen: set[int]) -> None:
    """ids of everything reachable through the exact containers the freeze looks into"""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    t = type(obj)
    if t is dict:
        for k, v in dict.items(obj):
            _walk(k, seen)
            _walk(v, seen)
    elif t is list or t is tuple or t is set:  # (identity: a class's == may be a metaclass's)
        for v in obj:
            _walk(v, seen)


def same(a: Any, b: Any, originals: set[int], pairs: dict[int, int]) -> None:
    """a (C's) and b (Python's) are the same freeze of the same original: each an original
    object kept by reference (the same one), or a copy of the same shape, shared the same
    way (pairs: id of each copy of a's to b's)."""
    if id(a) in pairs:
        assert pairs[id(a)] == id(b)
        return
    assert (id(a) in originals) == (id(b) in originals), (a, b)
    if id(a) in originals:
        assert a is b
        return
    assert type(a) is type(b)
    pairs[id(a)] = id(b)
    if type(a) is Unpicklable:
        assert (a.type_name, a.module, a.repr_text, a.reason) == (
            b.type_name,
            b.module,
            b.repr_text,
            b.reason,
        )
    elif type(a) is dict:
        assert len(a) == len(b)
        for (ka, va), (kb, vb) in zip(dict.items(a), dict.items(b), strict=True):
            assert ka is kb or (type(ka) is type(kb) and (type(ka) is int or type(ka) is str))
            assert ka == kb
            same(va, vb, originals, pairs)
    elif type(a) is list or type(a) is tuple:
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            same(x, y, originals, pairs)
    elif type(a) is str:  # (made by the freeze: the marker of exc_context)
        assert a == b
    else:
        assert type(a) is set
        assert set(map(id, a)) == set(map(id, b))


def same_memo(ma: dict[int, Any], mb: dict[int, Any], originals: set, pairs: dict) -> None:
    assert ma.keys() == mb.keys()
    for k in ma:
        same(ma[k], mb[k], originals, pairs)


leaves = st.one_of(
    st.integers(-5, 5),
    st.text(max_size=3),
    st.none(),
    st.floats(allow_nan=False),
    # (not ODD nor _Odd: hypothesis would look their classes up in a set -- metaclass code;
    # test_freeze_value_cases has them)
    st.sampled_from([H, CTX, frozenset({1, 2}), b"b", 1j, True]),
    st.builds(lambda: Dict(a=[1])),
    st.builds(lambda: List([1, [2]])),
    st.builds(lambda: TraceContext("exceptions", "f.g", "x")),
)
keys = st.one_of(st.text(max_size=3), st.integers(-3, 3), st.tuples(st.integers(0, 2)))
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(keys, inner, max_size=5),
        st.sets(st.one_of(st.integers(0, 9), st.text(max_size=2)), max_size=4),
        # a dict keyed by program objects: copied shallow, never hashed again
        st.lists(inner, max_size=3).map(lambda vs: {Key("k"): vs, H: 1}),
    ),
    max_leaves=30,
)


@st.composite
def graphs(draw: Any) -> Any:
    """A value, with some containers in it holding each other (and themselves)."""
    value = draw(values)
    found: list[Any] = []

    def containers(obj: Any, seen: set[int]) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if type(obj) in (list, dict):
            found.append(obj)
        if type(obj) is dict:
            for v in obj.values():
                containers(v, seen)
        elif type(obj) in (list, tuple):
            for v in obj:
                containers(v, seen)

    containers(value, set())
    for _ in range(draw(st.integers(0, 3))):
        if not found:
            break
        holder = draw(st.sampled_from(found))
        held = draw(st.sampled_from(found))
        if type(holder) is list:
            holder.append(draw(st.sampled_from([held, (held, 1)])))
        else:
            holder["self" + str(len(holder))] = held
    return value


limits = st.builds(
    freeze.Limits, max_depth=st.integers(0, 5), max_items=st.integers(0, 6), repr_limit=st.just(40)
)


def both_freezes(c: Any, value: Any, depth: int, lim: freeze.Limits) -> None:
    originals: set[int] = set()
    _walk(value, originals)
    memo_c: dict[int, Any] = {}
    memo_py: dict[int, Any] = {}
    RAN.clear()
    Hostile.armed = True
    try:
        got = c.freeze_value(HOW, value, depth, lim, memo_c)
        want = freeze._py_freeze(value, depth, lim, memo_py)
    finally:
        Hostile.armed = False
    assert RAN == []
    pairs: dict[int, int] = {}
    same(got, want, originals, pairs)
    same_memo(memo_c, memo_py, originals, pairs)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=graphs(), lim=limits, depth=st.integers(0, 2))
def test_freeze_value_is_the_python_freeze(c, value: Any, lim: freeze.Limits, depth: int) -> None:
    both_freezes(c, value, depth, lim)
    both_freezes(c, [value, value], depth, lim)  # the second time through the memo


@pytest.mark.parametrize("lim", [freeze.DEFAULT_LIMITS, freeze.Limits(max_depth=2, max_items=2)])
def test_freeze_value_cases(c, lim: freeze.Limits) -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    looped: dict[str, Any] = {"a": [1]}
    looped["me"] = looped
    looped["t"] = (looped, loop)
    cases = [
        loop,
        looped,
        (loop, [loop]),
        ([1, 2], [1, 2, 3]),  # max_items 2: the second kept as it is
        [[[[1]]]],  # deeper than max_depth 2
        (1, "a", None),  # a tuple of what needs no copy: kept
        ({1, 2}, frozenset({3})),
        {Key("k"): [1], "b": [2]},  # a program's key: shallow
        {H: [1]},
        [CTX, TraceContext("exceptions", "f.g", "x")],  # placeholders
        Dict(a=[1]),
        List([1]),
        [Dict(a=[1]), List([1]), ODD, _Odd, H],
        (),
        [],
        {},
        set(),
    ]
    for value in cases:
        for depth in (0, 1, 2, 7):
            both_freezes(c, value, depth, lim)


def test_freeze_value_kept_and_copied(c) -> None:
    """What the comparisons above rest on: containers copied, the rest kept, memo filled."""
    inner = [1]
    value = {"l": inner, "t": (1, 2), "s": {3}, "ctx": CTX, "h": H}
    memo: dict[int, Any] = {}
    got = c.freeze_value(HOW, value, 1, freeze.DEFAULT_LIMITS, memo)
    assert got == {"l": [1], "t": (1, 2), "s": {3}, "ctx": got["ctx"], "h": H}
    assert got is not value and got["l"] is not inner and got["s"] is not value["s"]
    assert got["t"] is value["t"] and got["h"] is H
    assert type(got["ctx"]) is Unpicklable and got["ctx"].reason == "another trace context"
    assert memo[id(value)] is got and memo[id(inner)] is got["l"]
    assert c.freeze_value(HOW, value, 1, freeze.DEFAULT_LIMITS, memo) is got
    assert c.freeze_value(HOW, H, 1, None, {}) is H  # (no limits read for a kept value)


def test_freeze_value_arguments(c) -> None:
    lim = freeze.DEFAULT_LIMITS
    for bad in (
        (HOW, [], 1, lim),
        (HOW[:3], [], 1, lim, {}),
        ((1, *HOW[1:]), [], 1, lim, {}),
        (HOW, [], "1", lim, {}),
        (HOW, [], 1, lim, []),
        (HOW, [], 1, freeze.Limits(max_depth="6"), {}),  # type: ignore[arg-type]
    ):
        with pytest.raises(TypeError):
            c.freeze_value(*bad)
    with pytest.raises(AttributeError):
        c.freeze_value(HOW, [], 1, object(), {})
    big = freeze.Limits(max_depth=2**70, max_items=2**70)
    assert c.freeze_value(HOW, [[1]], 1, big, {}) == [[1]]


def test_freeze_value_deep_nesting_raises(c) -> None:
    """A limit deeper than the interpreter's recursion limit: RecursionError, as in Python
    (never a crash of the C stack)."""
    value: list[Any] = []
    for _ in range(100_000):
        value = [value]
    lim = freeze.Limits(max_depth=10**9)
    with pytest.raises(RecursionError):
        c.freeze_value(HOW, value, 1, lim, {})


# -- freeze_entries: a frame's __trc --------------------------------------------------------


def both_entries(c: Any, d: dict, skip: frozenset, lim: freeze.Limits) -> None:
    originals: set[int] = set()
    top = dict(dict.items(d))  # kept alive: the walk records ids (see the context test)
    _walk(top, originals)
    memo_c: dict[int, Any] = {}
    memo_py: dict[int, Any] = {}
    RAN.clear()
    Hostile.armed = True
    try:
        got = c.freeze_entries(HOW, d, skip, lim, memo_c)
    finally:
        Hostile.armed = False
    assert RAN == []
    want = freeze._py_trc_copy(d, skip, lim, memo_py)
    if got is None:  # a key of a program class: the Python copy's to make
        assert any(type(k) not in (str, int, float, bool, type(None), bytes, complex) for k in d)
        return
    assert type(got) is dict and got is not d
    pairs: dict[int, int] = {}
    same(got, want, originals, pairs)
    same_memo(memo_c, memo_py, originals, pairs)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    d=st.dictionaries(st.sampled_from(["frame", "where", "related", "x", "y", 1]), graphs()),
    skip=st.sets(st.sampled_from(["frame", "where", "x"])).map(frozenset),
    lim=limits,
)
def test_freeze_entries_is_the_python_copy(c, d: dict, skip: frozenset, lim) -> None:
    both_entries(c, d, skip, lim)


def test_freeze_entries_cases(c) -> None:
    shared = [1]
    lim = freeze.DEFAULT_LIMITS
    trc = {"frame": ("f", 1), "framestack": [shared], "related": {}, "func": len, "r": shared}
    both_entries(c, trc, freeze._MADE, lim)
    lazy = LazyTrc(trc)  # (filling it would need its chain: must not be asked)
    both_entries(c, lazy, freeze._MADE, lim)
    got = c.freeze_entries(HOW, lazy, freeze._MADE, lim, {})
    assert type(got) is dict and got["framestack"] is trc["framestack"]
    assert got["related"] == {} and got["related"] is not trc["related"]
    both_entries(c, Dict(a=[1], b=2), frozenset(), lim)  # its own table only
    assert c.freeze_entries(HOW, {Key("k"): [1]}, frozenset(), lim, {}) is None
    assert c.freeze_entries(HOW, Dict({Key("k"): [1]}), frozenset(), lim, {}) is None
    assert c.freeze_entries(HOW, {H: 1}, frozenset(), lim, {}) is None
    for bad in ((HOW, [], frozenset(), lim, {}), (HOW, {}, set(), lim, {}), (HOW, {}, frozenset())):
        with pytest.raises(TypeError):
            c.freeze_entries(*bad)


# -- frames_holding: which raw records hold something to copy ------------------------------


def _raw(loc: Any) -> tuple:
    return ((None, "f.py", "f"), 1, loc, "m", None)


class Plain(dict):
    """A dict subclass of the program's as a frame's variables (read as its own table)"""


def _locs() -> list[tuple[Any, bool]]:
    """Variables in each of a raw record's forms, and whether they hold something to copy
    (for _CONTAINERS_OR_CONTEXTS)"""
    plain = {"n": 1, "s": "x", "odd": ODD, "cls": _Odd, "h": H}
    dicts = [
        (None, False),
        ({}, False),
        (plain, False),
        ({**plain, "l": []}, True),
        ({"t": (1, "a", ODD)}, False),
        ({"t": (1, [2])}, True),
        ({"t": (1, (2, 3))}, True),  # a tuple holding a tuple (itself watched)
        ({"d": Dict()}, False),
        ({"l": List()}, False),
        ({"ctx": CTX}, True),
        ({"fs": frozenset({1})}, False),
        ({"s": {1}}, True),
        (Plain(a=[1]), True),  # a dict subclass: its own table
    ]
    out: list[tuple[Any, bool]] = []
    for loc, holds in dicts:
        out.append((loc, holds))
        if type(loc) is dict and loc:
            out.append((list(loc.items()), holds))  # pairs
            out.append((tuple(loc.values()), holds))  # C's values of the code's names
    out += [([], False)]
    return out


WATCHES = [
    freeze._CONTAINERS_OR_CONTEXTS,
    freeze._CONTAINERS,
    frozenset({list, 1}),  # a member that is no class: PySet_Contains
    frozenset({list, _Calm}),  # a class of a metaclass of its own: likewise
    frozenset({int, float, str, bytes, complex, list, dict, set, tuple}),  # more than 8
    frozenset(),
]


@pytest.mark.parametrize("watch", WATCHES, ids=range(len(WATCHES)))
def test_frames_holding_is_the_python_scan(c, watch: frozenset) -> None:
    locs = [loc for loc, _ in _locs()]
    raws = [_raw(loc) for loc in locs]
    RAN.clear()
    want = freeze._frames_holding(raws, watch)
    assert c.frames_holding(raws, watch) == want
    assert RAN == []
    for i, loc in enumerate(locs):  # one at a time: the answer is each record's own
        one = c.frames_holding([_raw(loc)], watch)
        assert one == freeze._frames_holding([_raw(loc)], watch)
        assert one is None or one == [0]
        assert (one is not None) == (i in (want or []))
    assert RAN == []


def test_frames_holding_finds_each_kind(c) -> None:
    locs = _locs()
    raws = [_raw(loc) for loc, _ in locs]
    want = [i for i, (_, holds) in enumerate(locs) if holds]
    assert c.frames_holding(raws, freeze._CONTAINERS_OR_CONTEXTS) == want
    assert freeze._frames_holding(raws, freeze._CONTAINERS_OR_CONTEXTS) == want
    assert c.frames_holding([_raw(None), _raw({}), _raw([])], freeze._CONTAINERS) is None


def test_frames_holding_arguments(c) -> None:
    watch = freeze._CONTAINERS_OR_CONTEXTS
    for bad in (
        ((), watch),
        ([], set(watch)),
        ([(1, 2)], watch),
        ([_raw(5)], watch),
        ([_raw([("a", 1, 2)])], watch),
        ([_raw("ab")], watch),  # (no form of a frame's variables)
    ):
        with pytest.raises(TypeError):
            c.frames_holding(*bad)
    with pytest.raises(TypeError):
        c.frames_holding([])


# -- the whole freeze: C and Python give the same snapshot ----------------------------------


def _fails(n: int) -> None:
    raise ValueError(n)


def _holding(held: list, d: dict, t: tuple, s: set, ctx: FrameContext) -> None:  # noqa: ARG001
    loop: list[Any] = [held]
    loop.append(loop)
    _fails(len(loop))


def test_freeze_context_is_the_same_either_way(c, monkeypatch) -> None:
    """A context captured raw (its frames holding lists, dicts, sets, self-references, a
    trace context) frozen with the C steps and with the Python ones."""
    from otrace.contexts.capture import capture_exception
    from otrace.contexts.lazy import raw_records
    from otrace.contexts.speedups import frames_holding, freeze_entries, freeze_value

    if None in (freeze_entries, freeze_value, frames_holding):
        pytest.skip("the freeze's C steps are off (OTRACE_PURE=1)")
    held = [1, {"a": [2]}]
    try:
        _holding(held, {"k": held}, (held, 1), {1, 2}, CTX)
    except ValueError as exc:
        values, trc = capture_exception(exc, exc.__traceback__, sys._getframe(1))
        trc["related"] = {"other": [held]}
        ctx = TraceContext("exceptions", "Freeze.case", "ValueError", values, trc)
    assert raw_records(ctx) is not None
    got = freeze.freeze_context(ctx, 1)
    monkeypatch.setattr(freeze, "_freeze", freeze._py_freeze)
    monkeypatch.setattr(freeze, "_trc_copy", freeze._py_trc_copy)
    monkeypatch.setattr(freeze, "_holding", freeze._frames_holding)
    want = freeze.freeze_context(ctx, 1)
    assert got.copies is not None and len(got.copies) >= 2
    originals: set[int] = set()
    # The walk records ids, so every object it saw must outlive the comparison: a temporary
    # dict freed here could lend its id to the lists below (a flake seen on CI, 3.12).
    alive = [dict(freeze.loc_items(raw[0], raw[2])) for raw in got.raws or () if raw[2] is not None]
    alive += [dict(dict.items(ctx)), dict(dict.items(dict.get(ctx, "__trc")))]
    for d in alive:
        _walk(d, originals)
    pairs: dict[int, int] = {}
    frames_a, frames_b = list(got.frames), list(want.frames)
    same(frames_a, frames_b, originals, pairs)
    assert got.copies.keys() == want.copies.keys()  # type: ignore[union-attr]
    for i in got.copies:
        same(got.copies[i], want.copies[i], originals, pairs)  # type: ignore[index]
    assert got.raws is want.raws and got.root == want.root


def test_pure_scan_never_asks_a_class_bodys_dict_its_length() -> None:
    """A class body's variables may be a program's dict subclass (``__prepare__``): the pure
    scan must not ask its ``__len__``/``__bool__`` (program code), as the C one does not."""

    class Loud(dict):
        def __len__(self):
            raise SystemExit("program code ran")

        __bool__ = __len__

    raws = [((), 0, Loud(a=[1]), None, None), ((), 0, None, None, None), ((), 0, {}, None, None)]
    assert freeze._frames_holding(raws, freeze._CONTAINERS_OR_CONTEXTS) == [0]
