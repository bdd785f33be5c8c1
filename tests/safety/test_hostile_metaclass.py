"""Texts made on the traced thread run no program code, not even a metaclass's.

Looking a program's class up in a set or dict hashes it, and comparing it with a type
compares it: both call its metaclass's ``__hash__``/``__eq__``, which a program may define.
``brief``, ``stored_text`` and ``exc_line`` must never do either.
"""

from __future__ import annotations

from otrace.contexts.safe import brief, exc_line, stored_text

CALLS: list[str] = []


class Meta(type):
    def __hash__(cls) -> int:
        CALLS.append("hash")
        raise SystemExit("metaclass __hash__ ran")

    def __eq__(cls, other: object) -> bool:
        CALLS.append("eq")
        raise SystemExit("metaclass __eq__ ran")


class Hostile(metaclass=Meta):
    pass


class HostileError(Exception, metaclass=Meta):
    pass


def test_brief_and_stored_text_never_hash_or_compare_a_program_class() -> None:
    CALLS.clear()
    value = Hostile()
    texts = [
        brief(value),
        brief([value, 1, "a"]),
        brief({"k": value, "n": None}),
        brief((value,)),
        stored_text(value),
        stored_text([value]),
    ]
    assert CALLS == []
    assert "Hostile object at 0x" in texts[0]
    assert texts[1].startswith("[<") and texts[1].endswith(", 1, 'a']")
    assert texts[2].startswith("{'k': <") and texts[2].endswith(", 'n': None}")
    assert texts[3].endswith(",)")


def test_exc_line_never_hashes_or_compares_an_exception_class() -> None:
    CALLS.clear()
    line = exc_line(HostileError("boom", 3))
    assert CALLS == []
    assert line == "HostileError: ('boom', 3)"  # the interpreter's own str()
    # a program value among the arguments of a built-in exception
    line = exc_line(ValueError(Hostile()))
    assert CALLS == []
    assert line.startswith("ValueError: <") and "Hostile object at 0x" in line
