"""Recording stays cheap without changing what it shows (issue 19).

Fast argument binding agrees with ``Signature.bind``; recording and the pickle writer run no
program ``__repr__``/``__str__``/``__eq__`` (an exception's line, the stored value texts);
frames handed to the writer by reference are stored as they were captured, and keep nothing
alive once written.
"""

from __future__ import annotations

import gc
import inspect
import weakref

import pytest

from otrace.contexts import sqlite as store_sqlite
from otrace.contexts.record import TraceContext
from otrace.contexts.safe import exc_line, stored_text
from otrace.contexts.sanitize import decode, encode, freeze_context
from otrace.contexts.speedups import bind as c_bind
from otrace.tracing import trace
from otrace.tracing.engine import _EMPTY
from otrace.tracing.handlers import _quick_bind
from tests.rt import PARAMS, STORE
from tests.tracing import recorded as prog

pytestmark = pytest.mark.timeout(60)


def _bind(sig, args, kwargs):
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


class _Key(str):
    """A keyword name that is no exact str, with an __eq__ and __hash__ of its own."""

    def __eq__(self, other):
        raise SystemExit("program code ran")

    __hash__ = str.__hash__


@pytest.mark.parametrize("side", ["pure", "c"])
def test_quick_bind_agrees_with_signature_bind(side):
    if side == "c" and c_bind is None:
        pytest.skip("otrace._speedups is not built")
    functions = [
        lambda a, b=2: 0,
        lambda a, /, b, *c, d, e=5, **f: 0,
        lambda *a, **k: 0,
        lambda a, b, c=3, *, d=4: 0,
        lambda: 0,
        lambda a, /, **k: 0,
        lambda self, x, *args: 0,
        lambda a, /, b=1: 0,
        lambda *, a, b=2, **k: 0,
        lambda a, *, dd=4, **k: 0,
    ]
    argsets = [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4, 5)]
    kwsets = [
        {},
        {"a": 9},
        {"b": 8},
        {"d": 7},
        {"e": 6, "z": 1},
        {"z": 2},
        {"c": 1, "d": 2},
        {"a": 1, "b": 2, "k": 3},
        {"".join(["d", "d"]): 7, "".join(["z", "z"]): 1},  # not interned: compared by text
    ]
    quick = 0
    for f in functions:
        sig = inspect.signature(f)
        plan = tuple((p.name, int(p.kind), p.default) for p in sig.parameters.values())
        for args in argsets:
            for kwargs in kwsets:
                if side == "c":
                    got = c_bind(plan, args, kwargs, _EMPTY)
                    assert got is None or got == _quick_bind(plan, args, kwargs)
                else:
                    got = _quick_bind(plan, args, kwargs)
                if got is not None:  # None: the general binder decides (and reports errors)
                    quick += 1
                    want = _bind(sig, args, kwargs)
                    assert got == want and list(got) == list(want), (sig, args, kwargs)
                    for name, value in got.items():  # the very objects, not copies
                        kind = sig.parameters[name].kind
                        if name in kwargs and kind in (
                            kind.POSITIONAL_OR_KEYWORD,
                            kind.KEYWORD_ONLY,
                        ):
                            assert value is kwargs[name]
    assert quick > 60
    if side == "c":  # a keyword that is no exact str: left to the general binder, unasked
        plan = tuple(
            (p.name, int(p.kind), p.default) for p in inspect.signature(f).parameters.values()
        )
        assert c_bind(plan, (1, 2), {_Key("z"): 1}, _EMPTY) is None
        assert c_bind((("a", 1, _EMPTY),), (1,), {"b": 1}, _EMPTY) is None  # unknown keyword
        assert c_bind((), (1,), {}, _EMPTY) is None  # one positional too many
        assert c_bind("not a plan", (), {}, _EMPTY) is None


def test_argument_text_of_program_objects_is_briefs():
    """An argument's text takes a short cut for instances of program classes: it must say
    what ``brief`` says, for those and for everything the short cut must leave to it."""
    from otrace.contexts.safe import brief
    from otrace.tracing.handlers import _value_text

    class Plain:
        pass

    class Meta(type):
        pass

    class Sub(list):
        pass

    class Oops(ValueError):
        pass

    long_named = type("L" * 300, (), {})
    values = [Plain(), Sub([1]), Oops("x", 2), ValueError(3), long_named(), object(), 1.5, b"b"]
    values += [None, True, 3j, (1,), [2], {3: 4}, {5}, frozenset({6}), range(3), len]
    for value in values:
        assert _value_text(value) == brief(value, 200), value
    assert _value_text(Plain) == "Plain" and _value_text(Meta("M", (), {})) == "M"
    assert _value_text(long_named()).endswith("...") and len(_value_text(long_named())) == 203


def test_exception_line_runs_no_program_code():
    prog.Counted.calls = 0
    assert exc_line(ValueError(3)) == "ValueError: 3"
    assert exc_line(KeyError("k")) == "KeyError: 'k'"
    assert exc_line(prog.Loud("x", 2)) == "Loud: x, 2"  # its __str__ is the program's
    assert exc_line(ValueError(prog.Counted(1))).startswith("ValueError: <")
    assert stored_text(prog.Counted(4)) == "Counted(a=4)"
    assert prog.Counted.calls == 0


def test_exception_line_of_every_builtin_class_is_its_str():
    # exc_line's shortcut for the interpreter's own classes must say what str() says (a wrong
    # name, a dropped message or a cut long line would show here)
    import builtins

    seen = 0
    for cls in vars(builtins).values():
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            continue
        for args in ((), ("x",), ("x", 2), (3.5,), ("y" * 600,)):
            try:
                exc = cls(*args)
            except Exception:
                continue
            text = str(exc)
            want = f"{cls.__name__}: {text}" if text else cls.__name__
            want = want if len(want) <= 500 else want[:500] + "..."
            assert exc_line(exc) == want, (cls, args)
            seen += 1
    assert seen > 200


def test_recording_and_writing_run_no_program_code(tmp_path, announced):
    store_sqlite.install(PARAMS, STORE, workdir=tmp_path)
    try:
        PARAMS.set_text("pickle_file", "rec.db")
        trace(prog.fails, prog, "fails")
        trace(prog.chained, prog, "chained")
        prog.Counted.calls = 0
        with pytest.raises(ValueError):
            prog.chained(prog.Counted(7))
        assert store_sqlite.flush(30)
        assert prog.Counted.calls == 0  # neither the traced thread nor the writer
        stats = store_sqlite.writer().stats()
        assert stats["written"] == 2 and stats["failed"] == 0
        ctx = next(iter(STORE.recent["exceptions"]["chained"]["ex-ValueError"].values()))
        assert ctx.trc["exception"].startswith("ValueError: <")
        assert ctx.trc["exc_chain"][0][1].startswith("Loud: <")
        tree = store_sqlite.open_pickled("rec.db", workdir=tmp_path)
        stored = tree.find(ctx.id)
        assert stored is not None
        assert "Loud: <" in stored.trc["exc_stack"] and "ValueError: <" in stored.trc["exc_stack"]
        assert "value = " in stored.trc["exc_context"]  # made again by the reader
        assert prog.Counted.calls == 0
        tree.close()
        # when the operator reads the live context, the program's text may run
        assert "the program's own message" in str(ctx.trc["exc_stack"])
    finally:
        store_sqlite.uninstall()


def test_hostile_objects_run_nothing_while_recorded_and_written(tmp_path, announced):
    """__class__, __getattribute__, __hash__, __eq__, __repr__: none runs on the traced
    thread (capture, freeze); the writer runs only what pickling the object asks for."""
    store_sqlite.install(PARAMS, STORE, workdir=tmp_path)
    try:
        PARAMS.set_text("pickle_file", "sly.db")
        trace(prog.takes, prog, "takes", condition="call")
        trace(prog.raises_with, prog, "raises_with")
        sly = prog.Sly()
        table = {sly: [1, 2], "k": sly}  # a program object as a key, and as a value
        pair = (sly, [sly])
        prog.Sly.seen.clear()
        assert prog.takes(sly, table, pair) == 4
        with pytest.raises(KeyError):
            prog.raises_with(sly, table, pair)
        assert store_sqlite.flush(30)
        seen = list(prog.Sly.seen)
        assert [what for thread, what in seen if not thread.startswith("otrace-writer")] == []
        pickling = {"__reduce_ex__", "__reduce__", "__getstate__", "__class__"}
        assert {what for _, what in seen} <= pickling, seen
        stats = store_sqlite.writer().stats()
        assert stats["written"] == 2 and stats["failed"] == 0
        assert "takes" in STORE.recent["traces"] and "raises_with" in STORE.recent["exceptions"]
    finally:
        store_sqlite.uninstall()


def _two_frames(values: dict) -> TraceContext:
    def inner(v):
        try:
            raise ValueError(v)
        except ValueError as exc:
            from otrace.contexts.capture import capture_exception

            vals, trc = capture_exception(exc, exc.__traceback__, outer_frame)
            return TraceContext("exceptions", "inner", "ValueError", vals, trc)

    import sys

    outer_frame = sys._getframe()
    kept = dict(values)  # an outer frame's variables: referenced by the snapshot  # noqa: F841
    return inner(1)


def test_frames_by_reference_are_stored_as_captured():
    ctx = _two_frames({"n": 5})
    snap = freeze_context(ctx, 1)
    ctx.unlink()  # the store lets the context go before the writer gets to it
    ctx["__up"]["late"] = "added after the freeze"
    back = decode(encode(snap), key=ctx.id, kind=ctx.kind, created=ctx.created)
    up = back["__up"]
    assert up["kept"] == {"n": 5} and up["__trc"]["funcname"] == "_two_frames"
    assert "late" not in up or up["late"] == "added after the freeze"  # never a broken record


def test_written_contexts_keep_nothing_alive(tmp_path):
    """Snapshots hold a context's frames until written; then eviction frees them at once."""
    store_sqlite.install(PARAMS, STORE, workdir=tmp_path)
    PARAMS.set("max_recent", 1)
    trace(prog.fails, prog, "fails")
    gc.collect()
    gc.disable()
    try:
        PARAMS.set_text("pickle_file", "alive.db")
        first = weakref.ref(prog.caller(lambda: prog.Counted(1), prog.fails))
        assert store_sqlite.flush(30)
        prog.caller(lambda: prog.Counted(2), prog.fails)  # evicts the first context
        assert store_sqlite.flush(30)
        assert first() is None  # freed by reference counting: no cycle, no snapshot left
    finally:
        gc.enable()
        store_sqlite.uninstall()


def test_no_collection_can_start_while_the_trace_id_lock_is_held():
    """A collection runs finalizers -- program code, which may record a context and so ask
    for a trace id on this very thread: under the id's lock nothing may allocate an object
    the collector tracks.  With the threshold at 1, any such allocation starts a collection."""
    import gc

    from otrace.contexts import record

    seen: list[bool] = []

    def watch(phase, info):
        if phase == "start":
            seen.append(record._ts_lock.locked())

    threshold = gc.get_threshold()
    gc.callbacks.append(watch)
    gc.set_threshold(1)
    try:
        now = 1_790_000_000.0
        for step in (0.0, 1e-6, 3e-5, 0.25, 1.5, -0.1, -2.0, 1e-7):
            now += step
            record._py_new_timestamp(now)  # (the Python clock's lock; C's has none)
            TraceContext("traces", "f", "x", {"a": [1]}, {"b": (2,)}, created=now)
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(watch)
    assert seen, "no collection at all: the test did not test anything"
    assert not any(seen)


def test_exception_line_never_formats_program_fields():
    """str() of a SyntaxError or UnicodeError formats fields a program may set to its own
    objects (``msg``, ``reason``): the line is then made from the arguments, by both the
    Python and the C exception line, and no __str__ of the program's runs."""
    from otrace.contexts import capture, safe

    ran = []

    class Loud:
        def __str__(self):
            ran.append("__str__")
            raise SystemExit("program code ran")

        __repr__ = __str__

    bad_syntax = SyntaxError("m")
    bad_syntax.msg = Loud()
    bad_unicode = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")
    bad_unicode.reason = Loud()
    for exc in (bad_syntax, bad_unicode):
        assert exc_line(exc).startswith(type(exc).__name__ + ": ")
        if capture._c_exc_line is not None:
            assert capture._c_exc_line(exc, safe._STATIC_EXC, 500) is None
    assert ran == []
    good = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")
    assert exc_line(good) == "UnicodeDecodeError: " + str(good)  # plain fields: str() itself
