"""The optional C accelerator (otrace/_speedups.c) gives exactly what the Python code gives.

``walk`` against the Python loop of call_stack.py on real stacks; ``plain_repr`` against
``safe.brief`` without it (random nested values and every limit of ``_brief``), and never
touching a program object.  Skipped where the extension is not built, unless
``OTRACE_REQUIRE_SPEEDUPS=1`` (CI sets it): then its absence fails.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
import threading
from collections import OrderedDict, defaultdict, namedtuple
from types import FrameType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otrace.contexts import safe, speedups

REQUIRED = os.environ.get("OTRACE_REQUIRE_SPEEDUPS") == "1"


def _module():
    try:
        return importlib.import_module("otrace._speedups")
    except ImportError:
        if REQUIRED:
            raise
        pytest.skip("otrace._speedups is not built (no compiler or Python headers?)")


@pytest.fixture(scope="module")
def c():
    return _module()


def test_built_when_required() -> None:
    """CI fails here if the extension did not build; the module is used unless OTRACE_PURE."""
    if not REQUIRED:
        pytest.skip("OTRACE_REQUIRE_SPEEDUPS is not set")
    mod = importlib.import_module("otrace._speedups")
    if os.environ.get("OTRACE_PURE") != "1":
        assert speedups.walk is mod.walk
        assert speedups.plain_repr is mod.plain_repr


@pytest.mark.parametrize("pure", ["1", "0", None])
def test_pure_switch(c, pure: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OTRACE_PURE"}
    if pure is not None:
        env["OTRACE_PURE"] = pure
    code = (
        "from otrace.contexts import call_stack, safe, speedups\n"
        "print(speedups.walk is None, speedups.plain_repr is None,"
        " call_stack._walk is None, safe._plain_repr is None)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(pure == "1")] * 4


# -- walk --------------------------------------------------------------------------------


def python_walk(frame: FrameType | None) -> tuple[list, list]:
    """call_stack.capture_call_stack's pure-Python loop."""
    codes: list = []
    lastis: list = []
    while frame is not None:
        codes.append(frame.f_code)
        lastis.append(frame.f_lasti)
        frame = frame.f_back
    return codes, lastis


def both(c, frame: FrameType | None) -> tuple[tuple[list, list], tuple[list, list]]:
    """Both walks of ``frame`` (the caller's frames stand still meanwhile)."""
    return c.walk(frame), python_walk(frame)


def _deep(n: int, fn):
    return _deep(n - 1, fn) if n else fn()


def test_walk_plain_stack(c) -> None:
    got, want = _deep(25, lambda: both(c, sys._getframe(1)))
    assert got == want
    assert len(got[0]) > 25
    assert all(type(lasti) is int for lasti in got[1])


def test_walk_none_and_non_frames(c) -> None:
    assert c.walk(None) == ([], [])
    with pytest.raises(TypeError):
        c.walk(42)


def test_walk_generator(c) -> None:
    def gen():
        yield both(c, sys._getframe())
        yield 1

    g = gen()
    got, want = next(g)
    assert got == want and got[0][0] is gen.__code__
    # a suspended generator's frame has no f_back: a stack of one
    frame = g.gi_frame
    assert frame.f_back is None
    assert c.walk(frame) == python_walk(frame) == ([gen.__code__], [frame.f_lasti])


def test_walk_coroutine_under_a_loop(c) -> None:
    async def inner():
        await asyncio.sleep(0)
        return both(c, sys._getframe())

    async def outer():
        return await inner()

    got, want = asyncio.run(outer())
    assert got == want
    assert got[0][:2] == [inner.__code__, outer.__code__]


def test_walk_thread_to_its_first_frame(c) -> None:
    results = []

    def run():
        frame = sys._getframe()
        while frame.f_back is not None:
            frame = frame.f_back
        results.append((both(c, sys._getframe()), both(c, frame)))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    (got, want), (got_root, want_root) = results[0]
    assert got == want and got_root == want_root
    assert len(got_root[0]) == 1 and got[0][-1] is got_root[0][0]


def test_walk_keeps_reference_counts(c) -> None:
    frame = sys._getframe()
    code = frame.f_code
    before = sys.getrefcount(code), sys.getrefcount(frame)
    for _ in range(100):
        c.walk(frame)
    assert (sys.getrefcount(code), sys.getrefcount(frame)) == before


# -- plain_repr ----------------------------------------------------------------------------


def pure_brief(obj: object, limit: int) -> str:
    """safe.brief without the C shortcut."""
    text = safe._brief(obj, limit, 3)
    return text if len(text) <= limit else text[:limit] + "..."


def check(c, obj: object, budget: int) -> str | None:
    """plain_repr's answer, after checking it is brief's and repr's when it gives one."""
    got = c.plain_repr(obj, budget)
    if got is not None:
        assert got == pure_brief(obj, budget) == repr(obj)
    assert safe.brief(obj, budget) == pure_brief(obj, budget)
    return got


S = "x" * 60
K = "k" * 40
EDGES = [
    # (value, budget, shown by plain_repr)
    ("", 2, True),
    ("", 1, False),
    ("ab", 2, False),  # repr is 4 characters: brief cuts it
    ("ab", 4, True),
    ("ab", 3, False),
    ('it\'s "q"\n\t\\ é 日本 \U0001f600', 200, True),
    (0, 1, True),
    (-(2**63), 200, True),
    (2**199 - 1, 200, True),
    (-(2**199) + 1, 200, True),
    (2**199, 200, False),  # bit_length 200: "<big int>"
    (-(2**199), 200, False),
    (10**59, 200, True),
    (1.5, 200, True),
    (float("nan"), 200, True),
    (float("-inf"), 200, True),
    (True, 200, True),
    (None, 200, True),
    ([], 2, True),
    ((), 2, True),
    ({}, 2, True),
    ({}, 1, False),
    ((1,), 200, True),  # "(1,)"
    (((1,),), 200, True),
    ([(), [], {}], 200, True),
    (list(range(10)), 200, True),
    (list(range(11)), 200, False),  # the eleventh item: "..."
    (tuple(range(11)), 200, False),
    (dict.fromkeys(range(10)), 200, True),
    (dict.fromkeys(range(11)), 200, False),
    ([S], 200, True),
    ([S + "x"], 200, False),  # item strings: 60 characters
    ({K: 1}, 200, True),
    ({K + "k": 1}, 200, False),  # keys: 40 characters
    ({1: S}, 200, True),
    ({1: S + "x"}, 200, False),
    ({(K, 1): 1}, 200, False),  # a tuple key's budget is 40 ...
    ({("k" * 34, 1): 1}, 200, True),
    ({(K,): 1}, 200, True),  # ... which its text may pass with its last item
    ([[[1]]], 200, True),  # depth 3
    ([[[[1]]]], 200, False),  # depth 4: "<list of 1>"
    ([[[[]]]], 200, False),
    ({"a": {"b": {"c": 1}}}, 200, True),
    ({"a": {"b": {"c": {}}}}, 200, False),
    ([2**199], 200, False),
    ([[1, S]], 500, True),  # a nested list may pass its 60 with its last item ...
    ([[S, 1]], 500, False),  # ... but no item comes after that
    # the size before an item exactly the nested budget (1 + text + 2), and one past it
    ([["x" * 55, 1]], 200, True),
    ([["x" * 56, 1]], 200, False),
    ({("k" * 35, 1): 1}, 200, True),
    ({("k" * 36, 1): 1}, 200, False),
    ([{"k" * 21: "v" * 30, "b": 1}], 200, True),  # a dict item: key + ": " + value
    ([{"k" * 22: "v" * 30, "b": 1}], 200, False),
    ({"fast": True, "tags": ["a", "b"]}, 200, True),
]


@pytest.mark.parametrize(("value", "budget", "shown"), EDGES)
def test_plain_repr_limits(c, value: object, budget: int, shown: bool) -> None:
    assert (check(c, value, budget) is not None) is shown


@pytest.mark.parametrize("extra", range(-3, 4))
def test_plain_repr_budget_edges(c, extra: int) -> None:
    for value in ([1, "ab", None], {"k": (1.5,)}, ["x" * 50, "y" * 50, "z" * 50, 1], "abc"):
        size = len(repr(value))
        assert (check(c, value, size + extra) is not None) is (extra >= 0)


class Str(str):
    pass


class Int(int):
    pass


class List(list):
    pass


class Dict(dict):
    pass


class Tuple(tuple):
    __slots__ = ()


class Float(float):
    pass


Point = namedtuple("Point", "x y")

OTHERS = [
    Str("a"),
    Int(3),
    List([1]),
    Dict(a=1),
    Tuple((1,)),
    Float(1.5),
    Point(1, 2),
    OrderedDict(a=1),
    defaultdict(int),
    {1, 2},
    frozenset({1}),
    set(),
    b"bytes",
    bytearray(b"x"),
    1j,
    object(),
    ValueError(1),
    int,
    len,
    range(3),
]


@pytest.mark.parametrize("other", OTHERS, ids=lambda o: type(o).__name__)
def test_plain_repr_only_exact_builtins(c, other: object) -> None:
    for value in (other, [other], (1, other), {"k": other}, [[{"k": [other]}]]):
        assert c.plain_repr(value, 1000) is None
        check(c, value, 1000)
    if type(other) in (Str, Int, Float, Tuple, Point):  # hashable: as a key too
        assert c.plain_repr({other: 1}, 1000) is None


class Hostile:
    """Records every special method that runs, and stops the test with SystemExit."""

    ran: list[str] = []

    def _ran(self, name):
        Hostile.ran.append(name)
        raise SystemExit(name)

    def __repr__(self):
        self._ran("__repr__")

    def __str__(self):
        self._ran("__str__")

    def __eq__(self, other):
        self._ran("__eq__")

    def __hash__(self):
        self._ran("__hash__")

    def __len__(self):
        self._ran("__len__")

    def __getattr__(self, name):
        self._ran(name)


class HostileStr(str):
    def __repr__(self):
        Hostile.ran.append("str __repr__")
        raise SystemExit

    def __len__(self):
        Hostile.ran.append("str __len__")
        raise SystemExit

    def __hash__(self):
        return 1


def test_plain_repr_never_touches_program_objects(c) -> None:
    h = Hostile()
    key = HostileStr("k")
    values = [h, [1, h], (h,), {"a": h}, {key: 1}, {1: [2, (3, h)]}, [key], HostileStr("x")]
    Hostile.ran.clear()
    for value in values:
        assert c.plain_repr(value, 1000) is None
    assert Hostile.ran == []


def test_plain_repr_keeps_reference_counts(c) -> None:
    inner = ["a" * 61]
    value = {"k": [1, "x", inner], "j": (2.5,)}
    refs = sys.getrefcount(value), sys.getrefcount(inner), sys.getrefcount(value["j"])
    for budget in (1000, 5):
        for _ in range(100):
            c.plain_repr(value, budget)
            c.plain_repr([value], budget)
    assert (sys.getrefcount(value), sys.getrefcount(inner), sys.getrefcount(value["j"])) == refs


def test_plain_repr_arguments(c) -> None:
    with pytest.raises(TypeError):
        c.plain_repr(1)
    with pytest.raises(TypeError):
        c.plain_repr(1, Int(3))


texts = st.one_of(
    st.text(max_size=5),
    st.text(alphabet="ab'\"\\\n é日\U0001f600\x00\x7f", min_size=35, max_size=65),
    st.sampled_from(["x" * 40, "x" * 41, "x" * 60, "x" * 61]),
)
scalars = st.one_of(
    texts,
    st.integers(),
    st.integers(min_value=-(2**201), max_value=2**201),
    st.sampled_from([2**199 - 1, 2**199, -(2**199), 2**63, -(2**63) - 1]),
    st.floats(),
    st.booleans(),
    st.none(),
)
keys = st.one_of(texts, st.integers(), st.booleans(), st.none(), st.tuples(texts, st.integers()))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=12),
        st.lists(inner, max_size=12).map(tuple),
        st.dictionaries(keys, inner, max_size=12),
        st.lists(inner, max_size=2).map(lambda items: [frozenset(), *items]),
    ),
    max_leaves=40,
)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values, budget=st.one_of(st.integers(0, 300), st.sampled_from([60, 200, 500])))
def test_plain_repr_is_brief(c, value: object, budget: int) -> None:
    check(c, value, budget)
    check(c, [value], budget)


# -- holds_watched: the freeze's scan of a frame's variables ----------------------------------


class _Meta(type):
    """A program metaclass: looking its classes up in a set runs its __hash__."""

    def __hash__(cls) -> int:
        raise SystemExit("metaclass __hash__ ran")

    def __eq__(cls, other: object) -> bool:
        raise SystemExit("metaclass __eq__ ran")


class _Odd(metaclass=_Meta):
    pass


def _scans() -> list[tuple[object, bool]]:
    from otrace.contexts.record import FrameContext

    odd = _Odd()
    plain = {"n": 1, "s": "x", "f": 1.5, "none": None, "odd": odd, "obj": object()}
    cases: list[tuple[dict, bool]] = [
        ({}, False),
        (plain, False),
        ({**plain, "t": (1, "a", odd, (None,))}, True),  # a tuple holding a tuple
        ({**plain, "t": (1, "a", odd)}, False),
        ({**plain, "l": []}, True),
        ({**plain, "d": {}}, True),
        ({**plain, "s2": {1}}, True),
        ({**plain, "fs": frozenset({1})}, False),
        ({"t": (1, [2])}, True),
        ({"t": Tuple((1, [2]))}, False),  # a tuple subclass is no watched class
        ({"l": List([1])}, False),
        ({"ctx": FrameContext({})}, True),
        ({"t": ({},)}, True),
        ({"cls": _Odd}, False),
    ]
    out: list[tuple[object, bool]] = []
    for loc, want in cases:
        out.append((loc, want))
        out.append((list(loc.items()), want))  # 3.13's pairs
        out.append((tuple(loc.values()), want))  # otrace._frames' values of the code's names
    return out


@pytest.mark.parametrize(("loc", "want"), _scans())
def test_holds_watched_is_the_python_scan(c, loc: object, want: bool) -> None:
    from otrace.contexts import freeze

    watch = freeze._CONTAINERS_OR_CONTEXTS
    assert freeze._holds_watched(loc, watch) is want
    assert c.holds_watched(loc, watch) is want


def test_holds_watched_arguments(c) -> None:
    from otrace.contexts import freeze

    watch = freeze._CONTAINERS_OR_CONTEXTS
    for bad in ((1, watch), ({}, set(watch)), ([("a", 1, 2)], watch), ([["a", 1]], watch)):
        with pytest.raises(TypeError):
            c.holds_watched(*bad)
    with pytest.raises(TypeError):
        c.holds_watched({})
    assert c.holds_watched(Dict(a=[]), watch) is True  # a dict subclass: its own table


# -- args_text -------------------------------------------------------------------------------


def pure_args_text(varargs: str | None, bound: dict) -> str:
    from otrace.tracing import handlers

    saved = handlers._c_args_text
    handlers._c_args_text = None
    try:
        return handlers.args_text(varargs, bound)
    finally:
        handlers._c_args_text = saved


class _Meta2(type):
    """A metaclass whose special methods would run program code if asked."""

    def __eq__(cls, other):
        Hostile.ran.append("meta __eq__")
        raise SystemExit

    def __hash__(cls):
        Hostile.ran.append("meta __hash__")
        raise SystemExit

    def __subclasscheck__(cls, sub):
        Hostile.ran.append("meta __subclasscheck__")
        raise SystemExit


class _Odd2(metaclass=_Meta2):
    pass


class _Err(Exception):
    pass


ARG_VALUES = [
    1, -(10**15) + 1, 10**15, 10**20, True, None, 2.5, 3j, "x", "y" * 199, "z" * 200, "w" * 201,
    b"bytes", [1, "a"], list(range(30)), (1,), (), {"fast": True, "tags": ["a", "b"]}, {1, 2},
    frozenset(), Point(1, 2), Str("s"), Int(5), List([1]), Dict(a=1), Tuple((1,)), Float(1.5),
    Hostile(), HostileStr("hs"), _Odd2, _Odd2(), int, _Err("boom"), ValueError(1, [2]),
    OrderedDict(a=1), defaultdict(list), OrderedDict, defaultdict, type(sys._getframe()),
]  # fmt: skip


STARS = [(), (1, "two"), (Hostile(),)]


# (indices drawn, not the values: hypothesis reports its examples with repr, which these
# values' classes make raise)
@given(
    st.lists(st.integers(0, len(ARG_VALUES) - 1), max_size=6),
    st.sampled_from([None, "args", "rest"]),
    st.integers(0, len(STARS) - 1),
)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_args_text_is_the_python_text(c, picks: list, varargs: str | None, star: int) -> None:
    bound = {f"a{i}": ARG_VALUES[k] for i, k in enumerate(picks)}
    if varargs is not None:
        bound[varargs] = STARS[star]
    Hostile.ran.clear()
    got = c.args_text(varargs, bound, safe.brief)
    assert Hostile.ran == []  # (nor did the pure text run any: it is compared after)
    want = pure_args_text(varargs, bound)  # (not in the assert: its report would repr bound)
    assert got == want


def test_args_text_leaves_odd_calls_to_python(c) -> None:
    assert c.args_text(None, {1: 2}, safe.brief) is None  # a name that is no str
    assert c.args_text("args", {"args": [1]}, safe.brief) is None  # *args that is no tuple
    with pytest.raises(TypeError):
        c.args_text(None, Dict(a=1), safe.brief)
    with pytest.raises(TypeError):
        c.args_text(None, {})
    many = {f"a{i}": i for i in range(33)}  # more than C makes at once: Python's text
    assert c.args_text(None, many, safe.brief) is None
    assert c.args_text(None, dict(list(many.items())[:32]), safe.brief) == ", ".join(
        f"a{i}={i}" for i in range(32)
    )


def test_args_text_wide_and_mixed_characters(c) -> None:
    bound = {"é": "x", "a": "\u20ac", "b": ["\U0001f600", "it's", "a\\b"], "ü": 1}
    assert c.args_text(None, bound, safe.brief) == pure_args_text(None, bound)
    assert c.args_text("rest", {"rest": ("\u20ac",), "k": "é"}, safe.brief) == pure_args_text(
        "rest", {"rest": ("\u20ac",), "k": "é"}
    )


def test_args_text_used_by_handlers(c) -> None:
    from otrace.tracing import handlers

    if os.environ.get("OTRACE_PURE") != "1":
        assert handlers._c_args_text is c.args_text
    assert handlers.args_text("args", {"a": 1, "args": ()}) == "a=1"


def test_args_text_keeps_reference_counts(c) -> None:
    value = {"k": [1, "x"]}
    inst = Point(1, 2)
    bound = {"a": value, "b": inst, "c": 10**20}
    refs = sys.getrefcount(value), sys.getrefcount(inst), sys.getrefcount(bound)
    for _ in range(100):
        c.args_text(None, bound, safe.brief)
    assert (sys.getrefcount(value), sys.getrefcount(inst), sys.getrefcount(bound)) == refs


def _classes_for_repr() -> list[type]:
    """Classes whose instances' object.__repr__ the C text must match, cache or no cache."""

    class Plain:
        pass

    class Outer:
        class Inner:
            pass

    class Ünïcode:
        pass

    class InBuiltins:
        pass

    InBuiltins.__module__ = "builtins"  # object.__repr__ then writes the bare tp_name

    class NoStrModule:
        pass

    NoStrModule.__module__ = 42  # type: ignore[assignment]  # not a str: tp_name again

    class StrModule:
        pass

    StrModule.__module__ = Str("sub.module")  # a str subclass: its text, never asked

    class Slotted:
        __slots__ = ("a",)

    return [Plain, Outer.Inner, Ünïcode, InBuiltins, NoStrModule, StrModule, Slotted]


def test_program_instances_shown_as_object_repr(c) -> None:
    """The text of a program instance is ``object.__repr__``'s, also after its class's
    ``__module__`` or ``__qualname__`` changed (the cached start of the text must not stay),
    and for classes made again and again (new classes where old ones were)."""
    for _ in range(3):
        for cls in _classes_for_repr():
            obj = cls()
            assert c.args_text(None, {"a": obj}, safe.brief) == "a=" + object.__repr__(obj)
    cls = _classes_for_repr()[0]
    obj = cls()
    c.args_text(None, {"a": obj}, safe.brief)
    cls.__qualname__ = "Renamed.Now"
    assert c.args_text(None, {"a": obj}, safe.brief) == "a=" + object.__repr__(obj)
    assert "Renamed.Now object at 0x" in object.__repr__(obj)
    cls.__module__ = "elsewhere"
    assert c.args_text(None, {"a": obj}, safe.brief) == "a=" + object.__repr__(obj)
    for i in range(200):  # classes freed and made anew, with fresh names each time
        made = type(f"Made{i % 7}", (), {"__module__": f"mod{i % 5}"})
        one = made()
        assert c.args_text(None, {"a": one}, safe.brief) == "a=" + object.__repr__(one)
