"""Snapshots of frames, arguments and exceptions, taken when a trace event fires.

Capturing runs on the traced program's thread, so it is kept cheap: only what can still
change is copied -- the locals of frames still running, shallowly (deeply only with
``deep_copy``) -- the frame records of an exception's chain are built when first read (see
:mod:`otrace.contexts.lazy`), source lines come from ``linecache`` without touching the
disk again, and the long texts (``exc_stack``, ``exc_context``, ``stack``) are rendered only
when somebody reads them.

Frames of otrace's own wrappers are never shown: a code object registered with
:func:`hide_code`, or a frame with a true local ``__tracebackhide__``, is skipped.

Thread safety: every function may be called from any thread.
"""

from __future__ import annotations

import copy
import linecache
import sys
import traceback
from collections.abc import Callable
from types import CodeType, FrameType, TracebackType
from typing import Any

from otrace.contexts.chain import EXC_LIMIT, add_causes
from otrace.contexts.lazy import Raw, build, fill_stack, lazy_trc, line_at, source_slice
from otrace.contexts.lazy import pending as lazy_frames
from otrace.contexts.report import (
    FrameLine,
    exception_report,
    format_exception,
    format_exception_safe,
)
from otrace.contexts.safe import exc_line, safe_repr

# Code objects of otrace's own wrappers, hidden from captured stacks.  Process-wide like the
# code objects themselves; only ever added to (a registry of constants, not runtime state).
_HIDDEN: set[CodeType] = set()


def hide_code(*codes: CodeType) -> None:
    """Never show frames running these code objects (otrace's own wrappers)."""
    global _SHOWN_STACKS
    _HIDDEN.update(codes)
    _CODES.clear()  # cached verdicts may name these codes
    _PLAIN.clear()
    _SHOWN_STACKS = ()


# What capturing needs of a code object, looked up by ``id`` (hashing a code object hashes
# its bytecode and constants: slower than the rest of a frame's capture).  The entry keeps
# the code alive, so its id cannot be reused while cached; bounded by clearing.
# (code, filename, name, optimized, hidden: True / False / None = ask its __tracebackhide__,
#  its arguments' names as arg_names gives them, with a tuple for the list)
_CodeInfo = tuple[
    CodeType, str, str, bool, "bool | None", "tuple[tuple[str, ...], str | None, str | None]"
]
_CODES: dict[int, _CodeInfo] = {}
_CODES_MAX = 20_000


def _code_info(code: CodeType) -> _CodeInfo:
    info = _CODES.get(id(code))
    if info is not None and info[0] is code:
        return info
    if len(_CODES) >= _CODES_MAX:
        _CODES.clear()
    hidden: bool | None = code in _HIDDEN
    if not hidden and "__tracebackhide__" in code.co_varnames:
        hidden = None
    names, var, kw = arg_names_of(code)
    info = (
        code,
        code.co_filename,
        code.co_name,
        bool(code.co_flags & _CO_OPTIMIZED),
        hidden,
        (tuple(names), var, kw),
    )
    _CODES[id(code)] = info
    return info


def is_hidden(frame: FrameType) -> bool:
    hidden = _code_info(frame.f_code)[4]
    if hidden is not None:
        return hidden
    try:
        return bool(frame_locals(frame).get("__tracebackhide__"))
    except Exception:
        return False


class LazyText:
    """Text rendered on first use (``str()``) by ``render(*args)``, then kept.

    ``repr`` never renders (a report formats the program's values; code that ``repr``s
    garbage must not trigger that): it shows the text, cut, once rendered.  Give ``render``
    a module-level function and the data it needs, not a closure over the record that will
    hold this text -- that would make a reference cycle.

    ``render`` may run program code (``str`` of an exception, ``repr`` of values): it runs
    when an operator reads the text.  ``safe(*args)``, if given, renders the same text
    without running any (for the writer thread, see :meth:`safe_text`); without it,
    ``render`` itself must be safe.
    """

    __slots__ = ("_job", "_text")

    def __init__(
        self, render: Callable[..., str], *args: Any, safe: Callable[..., str] | None = None
    ):
        # one attribute, replaced whole: another thread reads it without a lock
        self._job: tuple[Callable[..., str], tuple, Callable[..., str] | None] | None = (
            render,
            args,
            safe,
        )
        self._text = ""

    def __str__(self) -> str:
        job = self._job
        if job is not None:
            self._text = _run(job[0], job[1])
            self._job = None
        return self._text

    def safe_text(self) -> str:
        """The text, rendered without running program code if it is not rendered yet (any
        thread; the safe rendering is not kept, so an operator still gets the full one)."""
        job = self._job
        if job is None:
            return self._text
        render, args, safe = job
        if safe is None:
            return str(self)
        return _run(safe, args)

    def __repr__(self) -> str:
        if self._job is not None:
            return "<text rendered when read>"
        return repr(self._text) if len(self._text) <= 200 else repr(self._text[:200]) + "..."

    def __getstate__(self) -> str:
        return str(self)

    def __setstate__(self, state: str) -> None:
        self._job, self._text = None, state

    def __reduce__(self):
        return (_lazy_from_text, (str(self),))


def _run(render: Callable[..., str], args: tuple) -> str:
    try:
        return render(*args)
    except Exception as exc:  # a debugger's report must not fail the reader
        return f"<could not render: {safe_repr(exc)}>"


def _lazy_from_text(text: str) -> LazyText:
    lt = LazyText(str, text)
    str(lt)
    return lt


def source_lines(filename: str, lineno: int, context: int) -> list[str] | None:
    """Up to ``context`` lines centred on ``lineno`` (None when context is 0 or no source)."""
    if context <= 0:
        return None
    start = lineno - context // 2
    if start < 1:
        start = 1
    # one cached list per file, sliced: much cheaper than a getline() per line
    entry = _LINECACHE.get(filename)
    lines = entry[2] if entry is not None and len(entry) != 1 else linecache.getlines(filename)
    return lines[start - 1 : start - 1 + context] or None


_LINECACHE = linecache.cache


def snapshot(values: dict[str, Any], deep: bool) -> dict[str, Any]:
    """Copy captured values; with ``deep``, containers and ``__deepcopy__`` types deeply.

    If ``self`` gets a deep copy, the live object stays under ``self`` and the copy is
    stored as ``self_copy`` (as the original did).  A value that fails to copy is kept as is.
    """
    out = dict(values)
    if not deep:
        return out
    for name, value in values.items():
        if isinstance(value, (dict, list, set, tuple, bytearray)) or hasattr(
            type(value), "__deepcopy__"
        ):
            try:
                copied = copy.deepcopy(value)
            except Exception:
                continue
            if name == "self":
                out["self_copy"] = copied
            else:
                out[name] = copied
    return out


_CACHES_LOCALS = sys.version_info < (3, 13)
_CO_OPTIMIZED = 0x1
# From 3.13 a function frame's ``f_locals`` is a FrameLocalsProxy, and an outer frame's raw
# record keeps the proxy's ``items()`` -- a list of (name, value) pairs, a copy as good as a
# dict (what it holds cannot change) made into one when the record is built.  Per frame of
# three variables that is about half the instructions of the proxy's ``copy()`` (measured
# on 3.13.0: 1,540 vs 3,020 beyond reading ``f_locals``; dict(items()) 3,930): ``copy()`` is
# a dict update from a mapping that is no dict -- ``keys()``, then a search of the code's
# names for each key -- where ``items()`` reads the frame's variables once, in order.
_PAIRS = not _CACHES_LOCALS


def frame_locals(frame: FrameType) -> dict[str, Any]:
    """A copy of ``frame``'s variables that leaves nothing behind in the frame.

    Before 3.13, reading ``f_locals`` of a function frame fills a dict cached on the frame
    with the variables' current values, and it stays there until the frame returns: an
    object the function ``del``s later would live on.  So when that dict was made by this
    read (nobody else holds it), it is emptied again; the next read refills it anyway.
    """
    try:
        cached = frame.f_locals
        if not frame.f_code.co_flags & _CO_OPTIMIZED:  # any mapping (module level, exec)
            return dict(cached)
        # a function's: a dict (before 3.13) or a FrameLocalsProxy, whose own copy is
        # quicker than dict()'s (which asks for keys, then each value)
        out = cached.copy()
    except Exception:
        return {}
    if (
        _CACHES_LOCALS
        and type(cached) is dict
        and sys.getrefcount(cached) == 3  # the frame's, ours, getrefcount's argument
    ):
        cached.clear()
    return out


def format_args(frame: FrameType, limit: int = 200) -> str:
    """``(a=1, b='x')`` for the frame's arguments, each value bounded."""
    code = frame.f_code
    nargs = code.co_argcount + code.co_kwonlyargcount
    names = list(code.co_varnames[:nargs])
    flags = code.co_flags
    if flags & 0x04:  # CO_VARARGS
        names.append(code.co_varnames[nargs])
        nargs += 1
    if flags & 0x08:  # CO_VARKEYWORDS
        names.append(code.co_varnames[nargs])
    loc = frame_locals(frame)
    return "(" + ", ".join(f"{n}={safe_repr(loc.get(n), limit)}" for n in names if n in loc) + ")"


def arg_names(frame: FrameType) -> tuple[list[str], str | None, str | None]:
    """(positional argument names, ``*args`` name, ``**kwargs`` name) -- ``argvalues``."""
    return arg_names_of(frame.f_code)


def arg_names_of(code: CodeType) -> tuple[list[str], str | None, str | None]:
    """:func:`arg_names` of a frame running ``code``."""
    n = code.co_argcount + code.co_kwonlyargcount
    names = list(code.co_varnames[:n])
    var = kw = None
    if code.co_flags & 0x04:
        var = code.co_varnames[n]
        n += 1
    if code.co_flags & 0x08:
        kw = code.co_varnames[n]
    return names, var, kw


def outer_frames(frame: FrameType | None) -> list[tuple[FrameType, int]]:
    """``frame`` and its callers as (frame, line), innermost first, hidden frames left out."""
    out = []
    codes = _CODES
    while frame is not None:
        code = frame.f_code
        info = codes.get(id(code))
        if info is None or info[0] is not code:
            info = _code_info(code)
        hidden = info[4]
        if not hidden and (hidden is not None or not is_hidden(frame)):
            out.append((frame, frame.f_lineno))
        frame = frame.f_back
    return out


def traceback_frames(tb: TracebackType | None) -> list[tuple[FrameType, int]]:
    """The frames of a traceback as (frame, line), outermost first, hidden ones left out."""
    out = []
    codes = _CODES
    while tb is not None:
        frame = tb.tb_frame
        code = frame.f_code
        info = codes.get(id(code))
        if info is None or info[0] is not code:
            info = _code_info(code)
        hidden = info[4]
        if not hidden and (hidden is not None or not is_hidden(frame)):
            out.append((frame, tb.tb_lineno))
        tb = tb.tb_next
    return out


_getrefcount = sys.getrefcount


def build_chain(
    frames: list[tuple[FrameType, int]],
    *,
    context_lines: int,
    deep: bool,
    outer_locals: bool = True,
    finished: int = 0,
    lazy: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Snapshot ``frames`` (outermost first) as a chain; return the innermost's (values, trc).

    Every frame gets ``__trc`` with ``frame``, ``funcname`` and ``module`` (the name of its
    globals' module, so evaluation can find the globals again, even post-mortem); each outer one is a
    :class:`FrameContext` reached through ``__up``, and links back with ``__down`` (the
    root's own ``__down`` link is made when the :class:`TraceContext` is constructed).  The
    root's ``__trc`` also gets ``framestack``, ``where`` and ``argvalues``.  With
    ``outer_locals`` False only the innermost frame's locals are copied.  An outer frame
    running module-level code keeps no variables (they are the module's globals, browsable
    at ``/osh/globals``), only its ``__trc``.  The last ``finished`` frames have returned
    or unwound (a traceback's frames below the one that caught): their variables cannot
    change, so they are kept as the frame left them instead of copied.

    This runs on the traced thread for every recorded exception, so it does the least that
    must happen now: per outer frame a raw record (see :mod:`otrace.contexts.lazy`) with a
    shallow copy of the variables of a frame still running (its caller changes them later)
    and the linecache entry of its file (the source as it is now).  With ``lazy``, the
    records are built into ``FrameContext`` objects when first read (the root's ``__up`` is
    a :class:`~otrace.contexts.lazy.LazyFrame`, its ``__trc`` a
    :class:`~otrace.contexts.lazy.LazyTrc` making ``framestack`` and ``where`` when read);
    without, before returning.  Texts made from these (``exc_stack``,
    ``exc_context``, ``stack``) are rendered when read.
    """
    last = len(frames) - 1
    if last < 0:
        return {}, {"framestack": [], "where": ""}
    keep_from = len(frames) - finished
    raws = [
        _record(frame, lineno, outer_locals, deep, i >= keep_from, context_lines)
        for i, (frame, lineno) in enumerate(frames[:last])
    ]
    frame, lineno = frames[last]
    return _root(raws, frame, lineno, context_lines, deep, lazy)


def _record(
    frame: FrameType, lineno: int, keep: bool, deep: bool, finished: bool, context: int
) -> Raw:
    """One outer frame's raw record (see :func:`build_chain`; ``keep``: its variables)."""
    code = frame.f_code
    cinfo = _CODES.get(id(code))
    if cinfo is None or cinfo[0] is not code:
        cinfo = _code_info(code)
    glob = frame.f_globals
    loc: dict[str, Any] | list[tuple[str, Any]] | None = None
    # A module-level frame's variables are its module's globals (see /osh/globals):
    # copying a whole namespace per context would cost more than it shows.
    if keep and (cinfo[3] or frame.f_locals is not glob):
        if deep:
            loc = snapshot(frame_locals(frame), deep)
        elif finished and _CACHES_LOCALS:
            try:  # its dict holds its last values for good
                loc = frame.f_locals
            except Exception:
                loc = None
        elif _PAIRS and cinfo[3]:
            try:  # (see _PAIRS)
                proxy: Any = frame.f_locals
                loc = proxy.items()
            except Exception:
                loc = None
        else:
            loc = frame_locals(frame)
    entry = _LINECACHE.get(cinfo[1]) if context > 0 else None
    # (a known line is kept as -1 - line: see otrace.contexts.lazy.Raw)
    return (cinfo, -1 - (lineno or 0), loc, glob.get("__name__", ""), entry)


def _live_records(frame: FrameType | None, deep: bool, context: int) -> list[Raw]:
    """Raw records of ``frame`` and its callers, innermost first, hidden frames left out.

    All of them still run, so their variables are copied (see :func:`frame_locals`): one
    loop doing what :func:`outer_frames` and :func:`_record` would, for the traced
    thread's every recorded exception.  What frames share is looked up once per run of
    them: consecutive frames of one code object (recursion) share its cached facts and
    linecache entry, of one module its name.
    """
    if deep:
        return _live_records_deep(frame, context)
    out: list[Raw] = []
    append = out.append
    codes = _CODES
    cache = _LINECACHE
    count = _getrefcount
    caches = _CACHES_LOCALS
    last_code: CodeType | None = None
    last_glob: dict[str, Any] | None = None
    cinfo: _CodeInfo  # (set by the first frame: its code is not last_code)
    plain = False
    entry: Any = None
    module: Any = ""
    loc: dict[str, Any] | None
    cached: Any
    while frame is not None:
        code = frame.f_code
        if code is not last_code:
            known = codes.get(id(code))
            cinfo = known if known is not None and known[0] is code else _code_info(code)
            last_code = code
            entry = cache.get(cinfo[1]) if context > 0 else None
            plain = cinfo[3] and cinfo[4] is False  # a function's frame, shown
        if plain:
            try:
                cached = frame.f_locals
                if caches:
                    loc = cached.copy()  # (see frame_locals)
                    # see frame_locals: leave nothing behind in the frame's cache
                    if count(cached) == 3:
                        cached.clear()
                else:  # a FrameLocalsProxy: its pairs (see _PAIRS)
                    loc = cached.items()
            except Exception:
                loc = None
        elif cinfo[4] is True or (cinfo[4] is None and is_hidden(frame)):
            frame = frame.f_back
            continue
        else:  # (module level: its variables are its module's, see build_chain)
            loc = _variables(frame, cinfo, False)
        glob = frame.f_globals
        if glob is not last_glob:
            last_glob = glob
            module = glob.get("__name__", "")
        append((cinfo, frame.f_lasti, loc, module, entry))  # (the line: when built)
        frame = frame.f_back
    return out


def _live_records_deep(frame: FrameType | None, context: int) -> list[Raw]:
    """:func:`_live_records` with ``deep_copy``: the variables copied deeply."""
    out: list[Raw] = []
    while frame is not None:
        cinfo = _code_info(frame.f_code)
        if not is_hidden(frame):
            out.append(
                (
                    cinfo,
                    frame.f_lasti,
                    _variables(frame, cinfo, True),
                    frame.f_globals.get("__name__", ""),
                    _LINECACHE.get(cinfo[1]) if context > 0 else None,
                )
            )
        frame = frame.f_back
    return out


def _variables(frame: FrameType, cinfo: _CodeInfo, deep: bool) -> dict[str, Any] | None:
    """A copy of a live frame's variables; None for module level (its module's globals)."""
    if not cinfo[3]:
        try:
            if frame.f_locals is frame.f_globals:
                return None
        except Exception:
            return None
    loc = frame_locals(frame)
    return snapshot(loc, True) if deep else loc


def _root(
    raws: list[Raw], frame: FrameType, lineno: int, context: int, deep: bool, lazy: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The innermost frame's (values, trc), ``__up`` leading to ``raws`` (outermost first)."""
    code = frame.f_code
    known = _CODES.get(id(code))
    cinfo = known if known is not None and known[0] is code else _code_info(code)
    filename, name = cinfo[1], cinfo[2]
    info: FrameLine = (
        filename,
        lineno,
        name,
        source_slice(filename, lineno, _LINECACHE.get(filename), context),
    )
    values = snapshot(frame_locals(frame), True) if deep else frame_locals(frame)
    module = frame.f_globals.get("__name__", "")
    names, var, kw = cinfo[5]
    argvalues = (list(names), var, kw)
    trc: dict[str, Any]
    if not raws:
        trc = {"frame": info, "funcname": name, "module": module, "framestack": [info]}
        trc["where"] = name
    elif lazy:  # framestack and where: made when read (see otrace.contexts.lazy)
        up = values["__up"] = lazy_frames(raws, context)
        trc = lazy_trc(up, info, name, module, argvalues)
        return values, trc
    else:
        up = values["__up"] = lazy_frames(raws, context)
        trc = {"frame": info, "funcname": name, "module": module}
        build(up)
        fill_stack(values, trc)
    trc["argvalues"] = argvalues
    return values, trc


def capture_exception(
    exc: BaseException,
    tb: TracebackType | None,
    caller: FrameType | None,
    *,
    context_lines: int = 5,
    deep: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Snapshot an exception: rooted at the frame that raised, ``__up`` to the outermost.

    ``tb`` is the traceback as seen where it was caught; ``caller`` the frame that called the
    catching code (its callers complete the chain outward).
    """
    inner = traceback_frames(tb)
    if inner:
        raws = _live_records(caller, deep, context_lines)
        raws.reverse()
        # every frame of the traceback but the one that caught has finished (unwound)
        first = tb.tb_frame if tb is not None else None
        for frame, lineno in inner[:-1]:
            raws.append(_record(frame, lineno, True, deep, frame is not first, context_lines))
        frame, lineno = inner[-1]
        values, trc = _root(raws, frame, lineno, context_lines, deep, True)
    else:  # nothing of the traceback shown: rooted at the caller
        outer = outer_frames(caller)
        outer.reverse()
        values, trc = build_chain(outer, context_lines=context_lines, deep=deep, lazy=True)
    trc["exc_stack"] = LazyText(format_exception, exc, tb, safe=format_exception_safe)
    trc["exc_context"] = LazyText(exception_report, exc, values, trc.get("frame"))
    trc["exception"] = exc_line(exc, EXC_LIMIT)  # (chain.describe)
    # chained exceptions (raise ... from ...): see otrace.contexts.chain (the test is
    # chain.next_cause's, inline: most exceptions have no cause)
    if exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        add_causes(exc, values, trc, context_lines=context_lines, deep=deep)
    return values, trc


def capture_call_stack(frame: FrameType | None) -> LazyText:
    """The call stack above ``frame`` as text, formatted when read.

    Only each frame's code object and ``f_lasti`` are taken now -- where the callers are
    changes as they run on; line numbers, file names, function names and source come from
    the code objects when the text is read.  Hidden frames are left out now: whether a
    frame hides itself can depend on its variables.
    """
    # Walk doing nothing else, then ask whether all those codes are shown: the same stack
    # of codes as a recent walk's is answered by comparing lists (at C speed, about 50
    # instructions a frame where a check per frame costs about 700).  The stack cannot
    # change meanwhile (this thread is here), so one that hides frames is walked again.
    codes: list[CodeType] = []
    lastis: list[int] = []
    code_append, lasti_append = codes.append, lastis.append
    start = frame
    while frame is not None:
        code_append(frame.f_code)
        lasti_append(frame.f_lasti)
        frame = frame.f_back
    if codes not in _SHOWN_STACKS:
        if all(map(_PLAIN.__contains__, map(id, codes))):
            _remember_shown(codes)
        else:
            codes, lastis = _checked_stack(start)
    return LazyText(_format_stack, codes, lastis)


def _remember_shown(codes: list[CodeType]) -> None:
    global _SHOWN_STACKS
    # (a new tuple, replacing the old whole: other threads read it without a lock; the
    # lists are never changed once made)
    _SHOWN_STACKS = (codes, *_SHOWN_STACKS[: _SHOWN_MAX - 1])


def _checked_stack(frame: FrameType | None) -> tuple[list[CodeType], list[int]]:
    """:func:`capture_call_stack`'s walk asking each frame whether it is shown."""
    codes: list[CodeType] = []
    lastis: list[int] = []
    plain = _PLAIN
    while frame is not None:
        code = frame.f_code
        if plain.get(id(code)) is not code:  # first sight, hidden, or asks its variables
            hidden = _code_info(code)[4]
            if hidden is False:
                if len(plain) >= _CODES_MAX:
                    plain.clear()
                plain[id(code)] = code
            elif hidden or is_hidden(frame):
                frame = frame.f_back
                continue
        codes.append(code)
        lastis.append(frame.f_lasti)
        frame = frame.f_back
    return codes, lastis


# Stacks of codes (innermost first) recently walked in which every frame is shown, newest
# first.  Compared with ``==``, which for code objects is ``is`` or equal code -- the same
# equality ``_HIDDEN``'s set lookups use.  Cleared with _PLAIN.
_SHOWN_STACKS: tuple[list[CodeType], ...] = ()
_SHOWN_MAX = 8

# Code objects a stack walk shows without asking anything, by id.  The entry keeps its code
# alive, so while an id is here no other object has it: finding a code's id here is
# finding the code.  Cleared with the verdicts of _CODES.
_PLAIN: dict[int, CodeType] = {}


def _format_stack(codes: list[CodeType], lastis: list[int]) -> str:
    summary = [
        (codes[i].co_filename, line_at(codes[i], lastis[i]), codes[i].co_name, None)
        for i in range(len(codes) - 1, -1, -1)
    ]
    return "".join(traceback.format_list(traceback.StackSummary.from_list(summary)))


def module_globals(module: str, live: bool) -> dict[str, Any] | None:
    """The globals a captured frame ran with, when this process has them.

    That is the namespace of the frame's module (``__trc["module"]``) if it is loaded here;
    None for an unknown module, and for ``__main__`` of a stored (not ``live``) context --
    this process's ``__main__`` is another program.  Any thread.
    """
    mod = sys.modules.get(module) if module else None
    if mod is None or (module == "__main__" and not live):
        return None
    ns = getattr(mod, "__dict__", None)
    return ns if isinstance(ns, dict) else None


def current_task_name() -> str | None:
    """Name of the asyncio task running in this thread, if any (no asyncio import cost)."""
    aio = sys.modules.get("asyncio")
    if aio is None:
        return None
    try:
        if aio.events._get_running_loop() is None:  # no loop: no task (and no exception)
            return None
        task = aio.current_task()
    except RuntimeError:
        return None
    return task.get_name() if task is not None else None
