"""A small program for tests/tracing/test_recording.py: hostile values and exceptions."""

from __future__ import annotations

import threading


class Counted:
    """Counts every call of its text methods; the counts must stay 0 while recording."""

    calls = 0

    def __init__(self, a: int) -> None:
        self.a = a

    def __repr__(self) -> str:
        Counted.calls += 1
        return f"Counted-{self.a}"  # (a test failing shows it; the count is what is checked)

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        Counted.calls += 1
        return self is other

    __hash__ = object.__hash__


class Loud(Exception):
    """An exception whose message is program code."""

    def __str__(self) -> str:
        Counted.calls += 1
        return "the program's own message"


def fails(value):
    raise Loud(value)


def chained(value):
    try:
        fails(value)
    except Loud as exc:
        raise ValueError(value) from exc


def caller(thing_factory, traced):
    thing = thing_factory()
    try:
        traced(thing)
    except Exception:
        pass
    return thing


class Sly:
    """Every way an object can run code when looked at: each logged with its thread."""

    seen: list[tuple[str, str]] = []

    def _note(self, what: str) -> None:
        Sly.seen.append((threading.current_thread().name, what))

    @property
    def __class__(self):  # isinstance() asks for it when the type check fails
        Sly._note(self, "__class__")
        return Sly

    def __getattribute__(self, name):
        Sly._note(self, name)
        return object.__getattribute__(self, name)

    def __hash__(self) -> int:
        Sly._note(self, "__hash__")
        return 1

    def __eq__(self, other: object) -> bool:
        Sly._note(self, "__eq__")
        return False

    def __repr__(self) -> str:
        Sly._note(self, "__repr__")
        return "Sly"


def takes(sly, table, pair):
    return len(table) + len(pair)


def raises_with(sly, table, pair):
    raise KeyError(sly)
