"""A small program for the safety tests."""

from __future__ import annotations

import collections
import functools

_password = "hunter2"
_secret_token = "tok-123"
counter = {"n": 0}
store = collections.defaultdict(list)


def respond(x):
    return f"v1 {x}"


async def handle(x):
    return x * 2


class Bank:
    def __init__(self):
        self._password = "pw"
        self.balance = 10

    @property
    def computed(self):
        counter["n"] += 1
        return self.balance

    @functools.cached_property
    def cached(self):
        counter["n"] += 1
        return 5


class Spy:
    """Records every special method the debugger calls on it."""

    def __init__(self):
        self.calls = []

    def _note(self, what):
        self.calls.append(what)

    def __getitem__(self, k):
        self._note("getitem")
        return 1

    def __add__(self, o):
        self._note("add")
        return 1

    def __contains__(self, o):
        self._note("contains")
        return True

    def __iter__(self):
        self._note("iter")
        return iter([1])

    def __format__(self, spec):
        self._note("format")
        return "x"

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self.calls.append("getattr")
        return 1

    def keys(self):
        self._note("keys")
        return ["a"]

    def __len__(self):
        self._note("len")
        return 1

    def __eq__(self, o):
        self._note("eq")
        return True

    __hash__ = object.__hash__

    def __bool__(self):
        self._note("bool")
        return True


bank = Bank()
spy = Spy()
