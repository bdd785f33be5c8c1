"""Texts made on the traced thread run no program code, not even a metaclass's.

Looking a program's class up in a set or dict hashes it, and comparing it with a type
compares it: both call its metaclass's ``__hash__``/``__eq__``, which a program may define.
``brief``, ``stored_text`` and ``exc_line`` must never do either.
"""

from __future__ import annotations

import sys
import threading

from otrace.contexts.safe import brief, exc_line, stored_text
from otrace.contexts.unpickle import Unpicklable

CALLS: list[tuple[str, str]] = []  # (method, the thread that ran it)


class Meta(type):
    def __hash__(cls) -> int:
        CALLS.append(("hash", threading.current_thread().name))
        raise SystemExit("metaclass __hash__ ran")

    def __eq__(cls, other: object) -> bool:
        CALLS.append(("eq", threading.current_thread().name))
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


# -- the pickle_file freeze (otrace.contexts.freeze), end to end ------------------------------


def _fails(n: int) -> None:
    raise ValueError(n)


def _holding(value: object, many: list, pair: tuple, keyed: dict, valued: dict) -> None:
    _fails(1)  # this frame's variables: program objects of a metaclass of their own


def _outer() -> None:
    value = Hostile()
    held = (value, [value], (1, value), {value: 1}, {"k": value})  # noqa: F841
    try:
        _holding(*held)
    except ValueError:
        pass


def test_the_pickle_file_freeze_never_hashes_or_compares_a_program_class(tmp_path, runtime):
    """A context frozen for ``pickle_file`` on the traced thread, whose frames hold instances
    of a class with a hostile metaclass (alone, in a list, a tuple, as a dict's key and value):
    the freeze decides by each value's type what to copy without hashing or comparing the
    class, and the context is stored.  (The writer thread's pickler does hash the class --
    pickling is the one program code the writer runs -- and stores a placeholder.)"""
    from otrace import tracing
    from otrace.contexts import sqlite as store_sqlite

    mod = sys.modules[__name__]
    runtime.params.set("trace_handled", True)
    store_sqlite.install(runtime.params, runtime.store, workdir=tmp_path)
    try:
        runtime.params.set("pickle_file", str(tmp_path / "meta.db"))
        tracing.trace(mod._fails, mod, "_fails")
        CALLS.clear()
        for _ in range(2):  # the second: the writer lived through the first
            thread = threading.Thread(target=_outer, name="traced")
            thread.start()
            thread.join(30)
        assert [c for c in CALLS if c[1] == "traced"] == []
        writer = store_sqlite.writer()
        assert writer is not None and writer.flush(30)
        assert writer.stats()["written"] == 2, writer.stats()
        ctx = runtime.store.newest
        assert ctx is not None
        stored = store_sqlite.open_pickled(tmp_path / "meta.db").find(ctx.id)
        assert stored is not None
        up = stored["__up"]
        assert up["__trc"]["funcname"] == "_holding"
        # pickling the class ran its metaclass's __hash__ (on the writer): placeholders
        for value in (up["value"], up["many"][0], up["pair"][1], up["valued"]["k"]):
            assert type(value) is Unpicklable and "metaclass __hash__ ran" in repr(value)
        assert type(up["many"]) is list and up["pair"][0] == 1
        assert [c for c in CALLS if c[1] == "traced"] == []
    finally:
        store_sqlite.uninstall()
