"""Functions for the tests that a traced function is invisible to the program (issue 20)."""

from __future__ import annotations

import functools
import sys
import warnings
import weakref


class Thing:
    pass


def drops(obj):
    """True if ``obj`` dies when this function lets go of it (nobody else holds it)."""
    ref = weakref.ref(obj)
    del obj
    return ref() is None


def who_called():
    return sys._getframe(1).f_code.co_name


def call_who():
    return who_called()


def warn_caller():
    warnings.warn("from the caller's line", UserWarning, stacklevel=2)


def call_warn():
    warn_caller()  # the warning's line


def raiser(n):
    raise ValueError(f"bad {n}")


def keeps_no_locals(forget):
    """Catch a traced exception, let the contexts go, del a local: does it die?"""
    thing = Thing()
    ref = weakref.ref(thing)
    try:
        raiser(1)
    except Exception:
        pass
    forget()
    del thing
    return ref() is None


class Loud:
    """A value whose str/repr call traced code and count how often they run."""

    calls = 0

    def __str__(self):
        Loud.calls += 1
        return self.describe()

    __repr__ = __str__

    def describe(self):
        return "loud"

    def take(self, other):
        return other is self


def gen(a, b):
    yield a
    yield b


async def coro(a, b=2):
    return a + b


def argspec_target(handler, callback=None, *args, key=1, **kwargs):
    return callback


@functools.cache
def cached(n):
    if n < 0:
        raise ValueError(n)
    return n * 2


class Lazy:
    @functools.cached_property
    def value(self):
        return 42


class Box:
    def __init__(self, data):
        self.data = data

    def __getitem__(self, key):
        return self.data[key]

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def get_loose(self, key):
        try:
            return self[key]
        except Exception:
            return None


def resized(width, scale=1):
    return width * scale


class Shape:
    def area(self, w):
        return w * w


def inner_raise():
    raise LookupError("flow control")


def middle():
    try:
        with open(__file__):  # a with block lets it through
            inner_raise()
    except:  # noqa: E722 - a cleanup that re-raises
        Thing()
        raise


def outer_specific():
    try:
        middle()
    except LookupError:
        return "handled"


def outer_catch_all():
    try:
        middle()
    except Exception:
        return "error page"


def write_some():
    raise BlockingIOError("would block")


def handle_write():
    try:
        with open(__file__):  # the call sits in a with block inside the try
            write_some()
    except BlockingIOError:
        return "later"
