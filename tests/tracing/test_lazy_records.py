"""Frame records built when first read (otrace.contexts.lazy) read the same as records built
at capture, through every reader: the shell (safe and unsafe mode), the store, the pickle
round trip, the traceback page, the exception report; and two threads reading one record at
once build it once."""

from __future__ import annotations

import sys
import threading
import traceback

import pytest

import otrace.shell.commands  # noqa: F401  (registers the commands)
from otrace.contexts import lazy
from otrace.contexts.call_stack import capture_call_stack
from otrace.contexts.capture import build_chain, capture_exception
from otrace.contexts.frames import outer_frames, traceback_frames
from otrace.contexts.lazy import LazyFrame, is_built, materialise
from otrace.contexts.record import FrameContext, TraceContext
from otrace.contexts.sanitize import decode, encode, freeze_context
from otrace.runtime import default
from otrace.shell.session import Session
from otrace.web.traceback_core import open_session
from tests.rt import STORE

pytestmark = pytest.mark.timeout(60)

LINKS = ("__up", "__down", "__trc")


# what _bottom captured (not a variable of the captured frames: they would show it)
_CAPTURED: list = []


def _level(n, trail):
    here = {"depth": n}  # noqa: F841  (a variable of every frame, for the readers)
    if n:
        return _level(n - 1, [*trail, n])
    try:
        _fail(trail)
    except ValueError as exc:
        _bottom(exc, sys._getframe().f_back)


def _fail(trail):
    size = len(trail)  # noqa: F841  (a finished frame's variable)
    _fail_deeper(trail)


def _fail_deeper(trail):
    raise ValueError(f"bottom {len(trail)}")


def _bottom(exc, caller):
    tb = exc.__traceback__
    lazy_values, lazy_trc = capture_exception(exc, tb, caller)
    frames = list(reversed(outer_frames(caller))) + traceback_frames(tb)
    eager_values, eager_trc = build_chain(frames, context_lines=5, deep=False)
    for key in ("exc_stack", "exc_context", "exception"):
        eager_trc[key] = lazy_trc[key]
    _CAPTURED.append((lazy_values, lazy_trc, eager_values, eager_trc))


def _record_pair(tag: str = "") -> tuple[TraceContext, TraceContext]:
    """The same exception, one moment: recorded lazily (as tracing does) and built at once."""
    _CAPTURED.clear()
    _level(4, [])
    (lazy_values, lazy_trc, eager_values, eager_trc) = _CAPTURED.pop()
    recorder = default().recorder
    lazy_ctx, _ = recorder.record(
        "exceptions", "RecLazy" + tag, "ValueError", lazy_values, lazy_trc
    )
    eager_ctx, _ = recorder.record(
        "exceptions", "RecEager" + tag, "ValueError", eager_values, eager_trc
    )
    assert type(dict.get(lazy_ctx, "__up")) is LazyFrame  # not built by recording
    assert type(dict.get(eager_ctx, "__up")) is FrameContext
    return lazy_ctx, eager_ctx


def _nodes(ctx):
    out, node = [], ctx
    while isinstance(node, FrameContext) and len(out) < 500:
        out.append(node)
        node = node.get("__up")
    return out


def _shape(ctx):
    """Every frame's keys in order, its variables (by identity) and its ``__trc``."""
    shape = []
    for node in _nodes(ctx):
        trc = {k: v for k, v in node["__trc"].items() if k not in ("id",)}
        values = {k: id(v) for k, v in node.items() if k not in LINKS}
        shape.append((list(node.keys()), values, trc))
    return shape


def test_records_read_the_same_through_the_store_and_python_reads():
    lazy_ctx, eager_ctx = _record_pair()
    found = STORE.find([lazy_ctx.id])[0]
    assert found is lazy_ctx
    lazy_shape, eager_shape = _shape(found), _shape(eager_ctx)
    assert len(lazy_shape) == len(eager_shape) > 5
    for (lk, lv, lt), (ek, ev, et) in zip(lazy_shape, eager_shape, strict=True):
        assert lk == ek  # key order: locals, __trc, __up, __down
        assert lv == ev  # the same captured objects
        assert {k: v for k, v in lt.items() if k not in ("context", "thread", "related")} == {
            k: v for k, v in et.items() if k not in ("context", "thread", "related")
        }
    trc = lazy_ctx.trc
    assert trc["where"] == eager_ctx.trc["where"] and trc["where"].endswith(
        "_level-->_level-->_level-->_level-->_level-->_fail-->_fail_deeper"
    )
    assert trc["framestack"] == eager_ctx.trc["framestack"]
    up = lazy_ctx["__up"]  # _fail: finished, its variables kept as it left them
    assert up["__down"] is lazy_ctx and up["size"] == 4 and up["trail"] == [4, 3, 2, 1]
    assert type(up) is FrameContext  # built: a plain record from now on
    level = up["__up"]
    assert level["here"] == {"depth": 0} and level["__trc"]["funcname"] == "_level"


def _listing(sh, ctx, lines):
    base = f"/osh/recent/exceptions/{ctx.name}/{ctx.ctxid}/{ctx.timestamp}"
    out = []
    for line in lines:
        r = sh.execute(line.format(base=base))
        text = (r.out + r.err).replace(ctx.id, "<id>").replace(ctx.name, "<name>")
        out.append(text.replace(ctx.timestamp, "<ts>"))
    return out


@pytest.mark.parametrize("safe", [True, False])
def test_records_read_the_same_in_the_shell(safe):
    lazy_ctx, eager_ctx = _record_pair()
    lines = [
        "cd {base}",
        "ls -l",
        "cd __up",
        "ls -l",
        "pr size",
        "cd __up/__up",
        "pr here",
        "pr trail",
        "cd __up",
        "ls",
        "cd {base}/__trc",
        "ls",
        "pr where",
        "pr framestack[-1]",
        "cd {base}/__up/__up/__up/__trc",
        "pr funcname",
    ]
    got = {}
    for ctx in (lazy_ctx, eager_ctx):
        sh = Session({"__name__": "lazy_test"}, allow_unsafe=True)
        try:
            if not safe:
                sh.execute("set safe_mode False")
            got["lazy" if ctx is lazy_ctx else "eager"] = _listing(sh, ctx, lines)
        finally:
            sh.close()
    assert got["lazy"] == got["eager"]
    text = "\n".join(got["lazy"])
    listing = got["lazy"]
    assert "trail" in listing[3]
    assert listing[4] == "4\n"
    assert listing[7] == "[4, 3, 2]\n"
    assert "_fail_deeper" in text


@pytest.mark.parametrize("safe", [True, False])
def test_a_listing_of_the_root_builds_the_chain(safe):
    """``ls -l`` of the root shows ``__up`` by its keys: read through dict's own methods in safe
    mode, so the listing builds the chain first."""
    lazy_ctx, eager_ctx = _record_pair()
    got = []
    for ctx in (lazy_ctx, eager_ctx):
        sh = Session({"__name__": "lazy_test"}, allow_unsafe=True)
        try:
            if not safe:
                sh.execute("set safe_mode False")
            got.append(_listing(sh, ctx, ["ls -l {base}/__up", "ls -l {base}"]))
        finally:
            sh.close()
    assert got[0] == got[1]
    assert "size" in got[0][0] and "trail" in got[0][1]


def test_records_read_the_same_after_a_pickle_round_trip():
    lazy_ctx, eager_ctx = _record_pair()
    backs = []
    for ctx in (lazy_ctx, eager_ctx):
        snap = freeze_context(ctx, 1)
        # the freeze (on the traced thread) hands raw records to the writer, unbuilt
        assert is_built(dict.get(ctx, "__up")) == (ctx is eager_ctx)
        back = decode(encode(snap), key=ctx.id, kind=ctx.kind, created=ctx.created)
        backs.append(
            [
                (
                    list(n.keys()),
                    {k: repr(v) for k, v in n.items() if k not in LINKS},
                    n["__trc"].get("frame"),
                )
                for n in _nodes(back)
            ]
        )
        assert back["__trc"]["where"] == eager_ctx.trc["where"]
    assert backs[0] == backs[1] and len(backs[0]) > 5


def test_records_read_the_same_on_the_traceback_page_and_in_the_report():
    lazy_ctx, eager_ctx = _record_pair()
    pages = [open_session(ctx, live=False) for ctx in (lazy_ctx, eager_ctx)]
    assert [(f.funcname, f.lineno, sorted(f.locals)) for f in pages[0].frames] == [
        (f.funcname, f.lineno, sorted(f.locals)) for f in pages[1].frames
    ]
    assert pages[0].meta.get("where") == pages[1].meta.get("where") is not None
    lazy2, eager2 = _record_pair("2")
    assert str(lazy2.trc["exc_context"]) == str(eager2.trc["exc_context"])


def test_two_threads_reading_at_once_build_the_record_once(monkeypatch):
    """Both readers make the records (outside the lock); exactly one result is installed,
    and both see the same frames."""
    lazy_ctx, _ = _record_pair()
    up = dict.get(lazy_ctx, "__up")
    inside = threading.Barrier(2, timeout=10)
    real = lazy.source_slice

    waited = threading.local()

    def slow_slice(*args):  # both threads are inside the build before either installs
        if not getattr(waited, "done", False):
            waited.done = True
            inside.wait()
        return real(*args)

    monkeypatch.setattr(lazy, "source_slice", slow_slice)
    installs = []
    real_install = lazy._INSTALL

    class CountingLock:
        def __enter__(self):
            real_install.acquire()
            installs.append(dict.get(up, "__trc"))

        def __exit__(self, *exc):
            real_install.release()

    monkeypatch.setattr(lazy, "_INSTALL", CountingLock())
    seen: list[list[int]] = []

    def reader():
        materialise(lazy_ctx)
        seen.append([id(n) for n in _nodes(lazy_ctx)])

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    assert not any(th.is_alive() for th in threads)
    assert len(seen) == 2 and seen[0] == seen[1] and len(seen[0]) > 5
    # both made the records; the second to take the lock found the first's installed and
    # left them (the third time is the root's __trc getting its framestack)
    assert len(installs) == 3 and installs[0] is None and installs[1] is not None
    assert dict.get(up, "__trc") is installs[1]
    assert is_built(up) and dict.get(up, "__trc")["funcname"] == "_fail"


def test_removing_a_record_unlinks_it_without_building_it():
    """The store's unlink drops the one link an unbuilt chain has (its ``__down`` to the
    root), on the thread that evicts -- the traced thread -- without building it.  (That no
    context leaves cyclic garbage is tests/tracing/test_invisible.py's test 3.)"""
    lazy_ctx, eager_ctx = _record_pair()
    up = dict.get(lazy_ctx, "__up")
    assert dict.get(up, "__down") is lazy_ctx
    STORE.remove(lazy_ctx)
    assert not is_built(up) and list(dict.keys(up)) == []
    assert up["__trc"]["funcname"] == "_fail"  # still readable: built now
    assert "__down" not in up


MODULE_SOURCE = """
big = list(range(1000))
def inner(k):
    raise KeyError(k)
try:
    inner(3)
except KeyError as exc:
    got.append(capture_exception(exc, exc.__traceback__, sys._getframe().f_back, deep=deep))
"""


@pytest.mark.parametrize("deep", [False, True])
def test_a_module_level_frame_keeps_no_variables(deep):
    """Its variables are the module's globals (browsable at /osh/globals): not copied, deep
    or shallow; the function frames around it are."""
    got: list = []
    namespace = {"__name__": "lazy_module", "capture_exception": capture_exception}
    namespace.update(sys=sys, got=got, deep=deep)
    exec(compile(MODULE_SOURCE, "<lazy_module>", "exec"), namespace)
    values, trc = got[0]
    ctx = TraceContext("exceptions", "inner", "KeyError", values, trc)
    assert ctx["k"] == 3
    module_frame = ctx["__up"]
    assert module_frame["__trc"]["funcname"] == "<module>"
    assert sorted(module_frame) == ["__down", "__trc", "__up"]
    caller = module_frame["__up"]
    # this test's frame: copied (deeply with deep_copy)
    assert caller["deep"] is deep and (caller["got"] is got) != deep  # deep: a copy, made empty


def _stack_here(k):
    if k:
        return _stack_here(k - 1)
    frame = sys._getframe()
    text, want = capture_call_stack(frame), traceback.format_stack(frame)
    return str(text), want


def test_a_call_stack_shows_the_lines_format_stack_shows():
    """A call's stack keeps (code, f_lasti) pairs; the lines found from them when the text is
    read are the ones the frames were at."""
    text, want = _stack_here(3)
    lines = text.splitlines(keepends=True)
    own = "".join(want[-5:])  # this test and _stack_here x4: no hidden frames among them
    assert own.count(", in _stack_here\n") == 4
    assert "".join(lines[-len(own.splitlines()) :]) == own


def _hiding(k, hide):
    __tracebackhide__ = hide  # noqa: F841  (read by the stack walk)
    return _stack_here(k)


def _on_thread(run):
    """Run on a thread of its own: pytest's frames ask to be hidden (``__tracebackhide__``),
    so a stack under them is always walked frame by frame, never compared."""
    out: list = []
    worker = threading.Thread(target=lambda: out.append(run()))
    worker.start()
    worker.join(30)
    assert out, "the thread failed"
    return out[0]


def test_a_call_stack_leaves_out_a_frame_that_hides_itself_every_time():
    """Stacks are checked at once when their codes are those of a recent all-shown stack;
    a frame asking to be hidden by its variables is never taken for such a stack."""
    _on_thread(_hides_every_time)


def _hides_every_time():
    for _ in range(3):  # the first walk checks frame by frame, later ones compare stacks
        shown, _ = _hiding(1, False)
        hidden, _ = _hiding(1, True)
        assert shown.count(", in _hiding\n") == 1
        assert ", in _hiding\n" not in hidden
        assert hidden.count(", in _stack_here\n") == 2
    return True


def _walk_from_here(k):
    if k:
        return _walk_from_here(k - 1)
    return str(capture_call_stack(sys._getframe()))


def test_a_stack_seen_before_is_hidden_once_its_code_is_registered():
    _on_thread(_seen_then_hidden)


def _seen_then_hidden():
    from otrace.contexts import frames

    def own_wrapper():  # stands for one of otrace's wrappers
        return _walk_from_here(0)

    assert str(own_wrapper()).count(", in own_wrapper\n") == 1
    assert str(own_wrapper()).count(", in own_wrapper\n") == 1  # (a stack seen before)
    frames.hide_code(own_wrapper.__code__)
    try:
        assert ", in own_wrapper\n" not in own_wrapper()
    finally:
        frames.HIDDEN.discard(own_wrapper.__code__)
        frames.hide_code()  # forget the verdicts naming it
    return True


def test_the_same_stack_from_another_line_shows_that_line():
    """A stack of the same codes keeps each walk's own lines."""
    first, second = _on_thread(_twice)
    one = [ln for ln in first.splitlines() if ", in _twice" in ln]
    two = [ln for ln in second.splitlines() if ", in _twice" in ln]
    line = _twice.__code__.co_firstlineno
    assert one == [f'  File "{__file__}", line {line + 1}, in _twice']
    assert two == [f'  File "{__file__}", line {line + 2}, in _twice']


def _twice():
    first = _walk_from_here(2)
    second = _walk_from_here(2)  # the same codes: a stack seen before
    return first, second


def _twin_level(n, seen):
    here = n  # noqa: F841  (a variable of every frame)
    if n:
        return (_twin if n % 2 else _twin_level)(n - 1, seen)
    try:
        raise KeyError(n)
    except KeyError as exc:
        seen.append(capture_exception(exc, exc.__traceback__, sys._getframe().f_back))


# _twin_level's own code object running with other globals (as types.FunctionType(code,
# globals) makes it): consecutive frames of one code object from two modules
_TWIN_GLOBALS = {"__name__": "lazy_twin", "_twin_level": _twin_level, "sys": sys}
_TWIN_GLOBALS.update(capture_exception=capture_exception)
_twin = type(_twin_level)(_twin_level.__code__, _TWIN_GLOBALS)
_TWIN_GLOBALS["_twin"] = _twin


def test_frames_of_one_code_object_keep_their_own_module():
    """A frame's module is its globals' ``__name__``, read per frame: consecutive frames of one
    code object may run with different globals."""
    seen: list = []
    _twin_level(5, seen)
    values, trc = seen[0]
    ctx = TraceContext("exceptions", "twin", "KeyError", values, trc)
    got = []
    for node in _nodes(ctx):
        if node["__trc"]["funcname"] == "_twin_level":
            got.append((node["here"] if "here" in node else None, node["__trc"]["module"]))
    # innermost first: odd n call the twin, which calls back here
    assert got == [
        (0, "lazy_twin"),
        (1, __name__),
        (2, "lazy_twin"),
        (3, __name__),
        (4, "lazy_twin"),
        (5, __name__),
    ]
    assert [f[2] for f in trc["framestack"][-6:]] == ["_twin_level"] * 6


def test_a_finished_frame_without_a_line_builds_at_line_0():
    """A traceback entry without a line number (None) is built at line 0, not a failed build."""

    def inner():
        return sys._getframe()

    finished = inner()
    here = sys._getframe()
    values, _ = build_chain(
        [(finished, None), (here, here.f_lineno)], context_lines=5, deep=False, lazy=True
    )
    up = values["__up"]
    assert type(up) is LazyFrame
    assert up["__trc"]["funcname"] == "inner" and up["__trc"]["frame"][1] == 0
