"""Functions traced with return-value conditions (tests/tracing/test_return_conditions.py)."""

from __future__ import annotations

import asyncio


def scale(a, b=2):
    a = a * b  # rebinds a parameter: a context must still show the value called with
    return a


def keyed(a, *rest, k=1, **more):
    k = k + 100
    more.pop("drop", None)
    if a < 0:
        return None
    return a + k


def counted(n):
    items = []
    while n > 0:
        items.append(n)
        n -= 1
    return len(items)


def gen(n):
    yield n
    n = -1
    return n * 2


async def fetch(v):
    await asyncio.sleep(0)
    v = v * 2
    return v


def nothing(x):
    x = 0  # noqa: F841 - returns None implicitly


class Account:
    def __init__(self, balance):
        self.balance = balance

    def withdraw(self, amount):
        self.balance -= amount
        amount = 0
        return self.balance


# The body never rebinds these parameters: they are read at return, nothing is kept at entry.
def add(a, b=2):
    return a + b


def opts(a, *rest, k=1):
    return a + k + len(rest)


async def double(v):
    await asyncio.sleep(0)
    return v * 2


def countdown(n):
    yield n
    return n - 1


# Rebinding that only a look at every binding form finds (the parameter is kept at entry).
def closure_rebind(a):
    def inner():
        nonlocal a
        a = 5

    inner()
    return a


def handler_rebind(a):
    try:
        raise ValueError(a)
    except ValueError as a:  # noqa: F811 - rebinds the parameter, then deletes it
        pass
    return 7
