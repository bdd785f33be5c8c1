"""Variables of a frame running under ``exec`` (or in a class body) live in whatever mapping
the program gave; its keys need not be names.  Capturing, freezing and storing such a frame
run none of the program's code: not a key's ``__hash__``/``__eq__`` (a ``str`` subclass's
included), not a mapping's own methods."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping

from otrace.contexts.frames import namespace_copy

CALLS: list[tuple[str, str]] = []  # (what ran, on which thread)
ARMED = [False]  # hostile once the test's own dicts are built


def _ran(what: str) -> None:
    if ARMED[0]:
        CALLS.append((what, threading.current_thread().name))
        raise SystemExit(f"{what} ran")


class Key:
    def __hash__(self) -> int:
        _ran("Key.__hash__")
        return 1234

    def __eq__(self, other: object) -> bool:
        _ran("Key.__eq__")
        return self is other


class Name(str):
    __slots__ = ()

    def __hash__(self) -> int:
        _ran("Name.__hash__")
        return 7

    def __eq__(self, other: object) -> bool:
        _ran("Name.__eq__")
        return str.__eq__(self, other)


class Scope(Mapping):
    """A namespace of the program's: every method is program code (``__getitem__`` is the
    program's own name lookup too: it answers, the rest must never run)."""

    def __getitem__(self, key: str) -> object:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        _ran("Scope.__iter__")
        return iter(())

    def __len__(self) -> int:
        _ran("Scope.__len__")
        return 0

    def keys(self):  # type: ignore[override]
        _ran("Scope.keys")
        return super().keys()


def _fails() -> None:
    raise ValueError("in exec")


def _run_exec(scope: object) -> None:
    """exec with ``scope`` as the variables of the code that calls the traced function."""
    code = compile("try:\n    fails()\nexcept ValueError:\n    pass\n", "<program exec>", "exec")
    ARMED[0] = True
    try:
        exec(code, {"fails": _fails}, scope)  # noqa: S102
    finally:
        ARMED[0] = False


def test_namespace_copy_keeps_plain_keys_and_the_text_of_others() -> None:
    key, name = Key(), Name("name")
    scope = {key: 1, name: 2, "plain": 3, 4: "four", (1, "a"): 5}
    CALLS.clear()
    ARMED[0] = True
    try:
        out = namespace_copy(scope)
        other = namespace_copy(Scope())
    finally:
        ARMED[0] = False
    assert CALLS == []
    assert {type(k) for k in out} == {str, int, tuple}
    texts = sorted(k for k in out if type(k) is str and k.startswith("<"))
    assert len(texts) == 2 and all(" object at 0x" in t for t in texts), texts
    assert out["plain"] == 3 and out[4] == "four" and out[(1, "a")] == 5
    assert sorted(v for k, v in out.items() if k in texts) == [1, 2]
    assert list(other) == ["__locals__"] and type(other["__locals__"]) is Scope


def test_an_exec_frame_with_hostile_keys_is_captured_frozen_and_stored(tmp_path, runtime) -> None:
    """End to end, ``pickle_file`` on: the traced thread captures and freezes, the writer
    stores; the exec frame's keys arrive as text, and no key's method runs anywhere."""
    from otrace import tracing
    from otrace.contexts import sqlite as store_sqlite

    mod = sys.modules[__name__]
    store_sqlite.install(runtime.params, runtime.store, workdir=tmp_path)
    try:
        runtime.params.set("pickle_file", str(tmp_path / "keys.db"))
        runtime.params.set("trace_handled", True)
        tracing.trace(mod._fails, mod, "_fails")
        scopes = [{Key(): 1, Name("name"): 2, "plain": [3]}, Scope()]
        CALLS.clear()
        live = []
        for scope in scopes:
            thread = threading.Thread(target=_run_exec, args=(scope,), name="traced")
            thread.start()
            thread.join(30)
            assert not thread.is_alive()
            live.append(runtime.store.newest)
        writer = store_sqlite.writer()
        assert writer is not None and writer.flush(30)
        assert CALLS == []
        assert writer.stats()["written"] == 2, writer.stats()
        assert len({id(c) for c in live}) == 2
        db = store_sqlite.open_pickled(tmp_path / "keys.db")
        for ctx, scope in zip(live, scopes, strict=True):
            for frames in (ctx, db.find(ctx.id)):
                assert frames is not None
                up = frames["__up"]
                assert up["__trc"]["funcname"] == "<module>"
                if isinstance(scope, Scope):
                    assert "__locals__" in up
                    continue
                assert up["plain"] == [3]
                texts = [k for k in up if type(k) is str and " object at 0x" in k]
                assert len(texts) == 2 and not any(isinstance(k, (Key, Name)) for k in up)
        assert CALLS == []
    finally:
        store_sqlite.uninstall()


def test_freeze_and_encode_of_a_context_made_with_program_keys() -> None:
    """A context made from values keyed by program objects (an API caller's, or ``**kwargs``
    of a ``str`` subclass): the freeze (traced thread) and the writer's encoding keep each
    such key as its text, at the top and nested."""
    from otrace.contexts.record import TraceContext
    from otrace.contexts.sanitize import decode, encode, freeze_context

    ctx = TraceContext(
        "traces", "Keys.case", "call", {Name("x"): 1, "ok": [1], Key(): 2, "kw": {Name("o"): 3}}
    )
    CALLS.clear()
    ARMED[0] = True
    try:
        back = decode(
            encode(freeze_context(ctx, 1)), key=ctx.id, kind=ctx.kind, created=ctx.created
        )
    finally:
        ARMED[0] = False
    assert CALLS == []
    assert back["ok"] == [1]
    keys = [k for k in back if k not in ("ok", "kw", "__trc")]
    assert len(keys) == 2 and all(type(k) is str for k in keys), keys
    assert list(back["kw"].values()) == [3] and type(next(iter(back["kw"]))) is str


def _exec_raising(scope: object) -> None:
    """Traced: the exception leaves the exec'd code and this function, so the exec frame is
    a finished one of the traceback."""
    code = compile("fails()\n", "<program exec>", "exec")
    exec(code, {"fails": _fails}, scope)  # noqa: S102


def _caller(scope: object) -> None:
    ARMED[0] = True
    try:
        _exec_raising(scope)
    except ValueError:
        pass
    finally:
        ARMED[0] = False


def test_a_finished_exec_frame_is_copied_like_a_running_one(runtime) -> None:
    from otrace import tracing

    mod = sys.modules[__name__]
    runtime.params.set("trace_handled", True)
    tracing.trace(mod._exec_raising, mod, "_exec_raising")
    scope = {Key(): 1, "plain": 2}
    CALLS.clear()
    thread = threading.Thread(target=_caller, args=(scope,), name="traced")
    thread.start()
    thread.join(30)
    ctx = runtime.store.newest
    assert ctx is not None and ctx.name.endswith("_exec_raising")
    ARMED[0] = True
    try:  # (the frames are built when first read)
        names = {f["__trc"]["funcname"]: f for f in _chain(ctx)}
    finally:
        ARMED[0] = False
    assert CALLS == []
    frame = names["<module>"]
    assert frame["plain"] == 2 and [k for k in frame if " object at 0x" in str(k)]
    assert all(type(k) is str for k in frame)


def _chain(ctx: dict) -> list[dict]:
    out, node = [], ctx
    while node is not None:
        out.append(node)
        node = node.get("__up")
    return out
