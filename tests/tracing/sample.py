"""A small program to trace (the reference's shop.py, grown to cover every callable kind)."""

from __future__ import annotations

import asyncio
import functools

from otrace.tracing import traceassert


class Base:
    def inherited(self, x):
        return x


class Cart(Base):
    """A shopping cart"""

    tax = 0.1

    def __init__(self, owner):
        self.owner = owner
        self.items = []

    def __repr__(self):
        return f"<Cart {self.owner}>"

    def add_item(self, name, qty=1):
        self.items.append((name, qty))
        return len(self.items)

    def boom(self, d):
        return helper(d)

    def check(self, number):
        local_note = "checking"  # noqa: F841 - captured by traceassert
        traceassert(number > 0, label="positive")
        return number

    @classmethod
    def make(cls, owner):
        return cls(owner)

    @staticmethod
    def double(x):
        return 2 * x

    @property
    def count(self):
        return len(self.items)

    @count.setter
    def count(self, value):
        del self.items[value:]

    def walk(self, n):
        for i in range(n):
            got = yield i
            if got == "stop":
                return "stopped"
        return "done"

    async def fetch(self, value, delay=0.0):
        await asyncio.sleep(delay)
        if value is None:
            raise ValueError("no value")
        return value * 2

    async def stream(self, n):
        for i in range(n):
            await asyncio.sleep(0)
            got = yield i
            if got == "boom":
                raise RuntimeError("boom")

    def __private(self):
        return "private"

    def call_private(self):
        return self.__private()


def helper(d):
    z = 42  # noqa: F841 - captured by exception contexts
    return 1.0 / d


def plain(a, b=2):
    return a + b


def posonly(a, /, b, *, c=3):
    return (a, b, c)


def varargs(*args, **kwargs):
    return (args, kwargs)


def decorated_by(func):
    @functools.wraps(func)
    def inner(*args, **kwargs):
        return func(*args, **kwargs)

    return inner


@decorated_by
def decorated(x, y=1):
    """Decorated doc."""
    return x - y


def checker(v):
    local_note = "checking"  # noqa: F841
    traceassert(v > 0, label="positive")
    return v


async def held(v):
    await traceassert(v != 77, label="hold_check", action="hold")
    return v


def recurse(n):
    if n == 0:
        raise KeyError("bottom")
    return recurse(n - 1)
