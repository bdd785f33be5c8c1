"""A program full of hostile objects, for the fuzz suite.

Every special method records its call in ``CALLS`` before misbehaving, so a test can tell
whether the debugger ran any of the program's code.  ``HANG`` decides how long the hanging
ones hang (a test sets it; forever is the point in safe mode, where nothing may call them).
"""

from __future__ import annotations

import collections
import functools
import threading

CALLS: list[str] = []
HANG = threading.Event()  # set: hanging methods return at once
HANG_SECONDS = 3600.0
WORK_DONE = collections.Counter()
_private_token = "tok-secret"


def _note(what: str) -> None:
    if len(CALLS) < 10_000:
        CALLS.append(what)


def _hang(what: str) -> None:
    _note(what)
    HANG.wait(HANG_SECONDS)


class RaisingRepr:
    def __repr__(self):
        _note("RaisingRepr.__repr__")
        raise SystemExit("repr exits")

    def __str__(self):
        _note("RaisingRepr.__str__")
        raise KeyboardInterrupt


class HangingRepr:
    def __repr__(self):
        _hang("HangingRepr.__repr__")
        return "late"

    __str__ = __repr__


class RecursiveRepr:
    def __repr__(self):
        _note("RecursiveRepr.__repr__")
        return repr(self)


class BadDir:
    def __dir__(self):
        _note("BadDir.__dir__")
        raise RuntimeError("no dir")


class HangingDir:
    def __dir__(self):
        _hang("HangingDir.__dir__")
        return []


class Getattr:
    def __getattr__(self, name):
        _note(f"Getattr.__getattr__ {name}")
        if name.startswith("__"):
            raise AttributeError(name)
        return Getattr()


class HangingGetattr:
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        _hang("HangingGetattr.__getattr__")
        return 1


class Props:
    plain = 1

    @property
    def raising(self):
        _note("Props.raising")
        raise MemoryError("property")

    @property
    def hanging(self):
        _hang("Props.hanging")
        return 1

    @functools.cached_property
    def cached(self):
        _note("Props.cached")
        return 2


class LyingClass:
    @property
    def __class__(self):
        _note("LyingClass.__class__")
        raise RuntimeError("no class")


class Everything(RaisingRepr, BadDir, Getattr):
    """Special methods that all misbehave."""

    def __eq__(self, other):
        _note("Everything.__eq__")
        raise ValueError

    __hash__ = object.__hash__

    def __len__(self):
        _hang("Everything.__len__")
        return 0

    def __iter__(self):
        _hang("Everything.__iter__")
        return iter(())

    def __getitem__(self, key):
        _note("Everything.__getitem__")
        raise SystemExit

    def __bool__(self):
        _note("Everything.__bool__")
        raise RuntimeError

    def __format__(self, spec):
        _note("Everything.__format__")
        raise RuntimeError


class ManyAttrs:
    def __init__(self, n):
        for i in range(n):
            setattr(self, f"a{i}", i)


raising = RaisingRepr()
hanging = HangingRepr()
recursive = RecursiveRepr()
baddir = BadDir()
hangdir = HangingDir()
getattr_obj = Getattr()
hanggetattr = HangingGetattr()
props = Props()
liar = LyingClass()
everything = Everything()
huge_list = list(range(100_000))
huge_dict = {f"k{i}": i for i in range(100_000)}
many = ManyAttrs(5_000)
nested = [[[[[[["deep"]]]]]]]
store = collections.defaultdict(list)
text = "plain \x1b[2J text"
counter = {"n": 0}


def work(x, y=2):
    """What the program threads run, traced."""
    WORK_DONE[threading.current_thread().name] += 1
    return x + y


def snapshot() -> dict:
    """What must not change in safe mode."""
    return {
        "calls": list(CALLS),
        "store": dict(store),
        "counter": dict(counter),
        "props": dict(vars(props)),
        "many": len(vars(many)),
        "globals": sorted(k for k in globals() if not k.startswith("__")),
    }
