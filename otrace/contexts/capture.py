"""Snapshots of frames, arguments and exceptions, taken when a trace event fires.

Capturing runs on the traced program's thread, so it is kept cheap: only what can still
change is copied -- the locals of frames still running, shallowly (deeply only with
``deep_copy``) -- the frame records of an exception's chain are built when first read (see
:mod:`otrace.contexts.lazy`), source lines come from ``linecache`` without touching the
disk again, and the long texts (``exc_stack``, ``exc_context``, ``stack``) are rendered only
when somebody reads them.

Which frames are shown, and how a frame's variables are copied: :mod:`otrace.contexts.frames`;
the stack of a call context: :mod:`otrace.contexts.call_stack`.

Thread safety: every function may be called from any thread.
"""

from __future__ import annotations

import linecache
import sys
from types import CodeType, FrameType, TracebackType
from typing import Any

from otrace.contexts.chain import EXC_LIMIT, add_causes
from otrace.contexts.frames import (
    CACHES_LOCALS,
    CODES,
    PAIRS,
    CodeInfo,
    code_info,
    frame_locals,
    is_hidden,
    may_empty,
    outer_frames,
    snapshot,
    traceback_frames,
)
from otrace.contexts.lazy import LazyFrame, LazyTrc, Raw, build, fill_stack, lazy_root, source_slice
from otrace.contexts.lazy import pending as lazy_frames
from otrace.contexts.lazytext import LazyText as LazyText  # (re-exported: readers test for it)
from otrace.contexts.lazytext import lazy_text
from otrace.contexts.report import (
    FrameLine,
    exception_report,
    format_exception,
    format_exception_safe,
)
from otrace.contexts.safe import _STATIC_EXC, exc_line
from otrace.contexts.speedups import exc_line as _c_exc_line
from otrace.contexts.speedups import exc_root as _c_exc_root
from otrace.contexts.speedups import frame_values as _c_frame_values
from otrace.contexts.speedups import live_records as _c_live_records


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


_getrefcount = sys.getrefcount
_dict_get = dict.get


def _module_name(glob: dict[str, Any]) -> Any:
    """The ``__name__`` in a frame's globals, read with dict's own ``get``: globals may be
    a program's dict subclass, whose ``get`` is the program's code."""
    return _dict_get(glob, "__name__", "")


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
    cinfo = CODES.get(id(code))
    if cinfo is None or cinfo[0] is not code:
        cinfo = code_info(code)
    glob = frame.f_globals
    loc: dict[str, Any] | list[tuple[str, Any]] | None = None
    # A module-level frame's variables are its module's globals (see /osh/globals):
    # copying a whole namespace per context would cost more than it shows.
    if keep and (cinfo[3] or frame.f_locals is not glob):
        if deep:
            loc = snapshot(frame_locals(frame), deep)
        elif finished and CACHES_LOCALS and cinfo[3]:
            try:  # its dict holds its last values for good (a function's: names only)
                loc = frame.f_locals
            except Exception:
                loc = None
        elif PAIRS and cinfo[3]:
            try:  # (see PAIRS)
                proxy: Any = frame.f_locals
                loc = proxy.items()
            except Exception:
                loc = None
        else:
            loc = frame_locals(frame)
    entry = _LINECACHE.get(cinfo[1]) if context > 0 else None
    # (a known line is kept as -1 - line: see otrace.contexts.lazy.Raw)
    return (cinfo, -1 - (lineno or 0), loc, _module_name(glob), entry)


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
    if _c_live_records is not None:  # (the same records; see otrace/_frames.c)
        return _c_live_records(frame, CODES, _LINECACHE, context, _one_record)
    out: list[Raw] = []
    codes = CODES
    cache = _LINECACHE
    count = _getrefcount
    caches = CACHES_LOCALS
    empty = may_empty()
    last_code: CodeType | None = None
    last_glob: dict[str, Any] | None = None
    cinfo: CodeInfo  # (set by the first frame: its code is not last_code)
    plain = False
    entry: Any = None
    module: Any = ""
    loc: dict[str, Any] | None
    cached: Any
    while frame is not None:
        code = frame.f_code
        if code is not last_code:
            known = codes.get(id(code))
            cinfo = known if known is not None and known[0] is code else code_info(code)
            last_code = code
            entry = cache.get(cinfo[1]) if context > 0 else None
            plain = cinfo[3] and cinfo[4] is False  # a function's frame, shown
        if not plain:  # hidden, module level, a class body: what the C loop asks too
            raw = _one_record(frame, context)
            if raw is not None:
                out.append(raw)
            frame = frame.f_back
            continue
        try:
            cached = frame.f_locals
            if caches:
                loc = cached.copy()  # (see frame_locals)
                # see frame_locals: leave nothing behind in the frame's cache
                if empty and count(cached) == 3:
                    cached.clear()
            else:  # a FrameLocalsProxy: its pairs (see PAIRS)
                loc = cached.items()
        except Exception:
            loc = None
        glob = frame.f_globals
        if glob is not last_glob:
            last_glob = glob
            module = _module_name(glob)
        # (out.append, not a bound method kept in a local: the interpreter specialises
        # the former, about 80 instructions less per frame; the line: when built)
        out.append((cinfo, frame.f_lasti, loc, module, entry))
        frame = frame.f_back
    return out


def _one_record(frame: FrameType, context: int) -> Raw | None:
    """:func:`_live_records`' record of one frame (None: hidden): the frames neither loop
    reads in its own fast way -- for the C loop every frame it does not know how to read
    (see otrace/_frames.c)."""
    cinfo = code_info(frame.f_code)
    if cinfo[3] and cinfo[4] is False:
        loc: Any = frame_locals(frame)
    elif cinfo[4] is True or (cinfo[4] is None and is_hidden(frame)):
        return None
    else:
        loc = _variables(frame, cinfo, False)
    entry = _LINECACHE.get(cinfo[1]) if context > 0 else None
    return (cinfo, frame.f_lasti, loc, _module_name(frame.f_globals), entry)


def _live_records_deep(frame: FrameType | None, context: int) -> list[Raw]:
    """:func:`_live_records` with ``deep_copy``: the variables copied deeply."""
    out: list[Raw] = []
    while frame is not None:
        cinfo = code_info(frame.f_code)
        if not is_hidden(frame):
            out.append(
                (
                    cinfo,
                    frame.f_lasti,
                    _variables(frame, cinfo, True),
                    _module_name(frame.f_globals),
                    _LINECACHE.get(cinfo[1]) if context > 0 else None,
                )
            )
        frame = frame.f_back
    return out


def _variables(frame: FrameType, cinfo: CodeInfo, deep: bool) -> dict[str, Any] | None:
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
    known = CODES.get(id(code))
    cinfo = known if known is not None and known[0] is code else code_info(code)
    filename, name = cinfo[1], cinfo[2]
    entry = _LINECACHE.get(filename)
    if context > 0 and entry is not None and len(entry) != 1:  # (source_slice, inline)
        start = lineno - context // 2
        if start < 1:
            start = 1
        lines = entry[2][start - 1 : start - 1 + context] or None
    else:
        lines = source_slice(filename, lineno, entry, context)
    info: FrameLine = (filename, lineno, name, lines)
    if deep:
        values = snapshot(frame_locals(frame), True)
    else:  # (C: without f_locals -- see otrace/_frames.c; None: a frame it does not read)
        loc = _c_frame_values(frame) if _c_frame_values is not None else None
        values = loc if loc is not None else frame_locals(frame)
    module = _dict_get(frame.f_globals, "__name__", "")  # (_module_name, inline)
    names, var, kw = cinfo[5]
    argvalues = (list(names), var, kw)
    trc: dict[str, Any]
    if not raws:
        trc = {"frame": info, "funcname": name, "module": module, "framestack": [info]}
        trc["where"] = name
    elif lazy:  # framestack and where: made when read (see otrace.contexts.lazy)
        values["__up"], trc = lazy_root(raws, context, info, name, module, argvalues)
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
    root = (
        _c_exc_root(
            tb, caller, CODES, _LINECACHE, context_lines, _one_record, LazyFrame, LazyTrc, _record
        )
        if _c_exc_root is not None and not deep
        else None
    )
    values: dict[str, Any]
    trc: dict[str, Any]
    if root is not None:  # (C: the usual traceback, see otrace/_frames.c)
        values, trc = root
    elif inner := traceback_frames(tb):
        raws = _live_records(caller, deep, context_lines)
        raws.reverse()
        frame, lineno = inner.pop()
        if inner:
            # every frame of the traceback but the one that caught has finished (unwound)
            first = tb.tb_frame if tb is not None else None
            for before, at in inner:
                raws.append(_record(before, at, True, deep, before is not first, context_lines))
        values, trc = _root(raws, frame, lineno, context_lines, deep, True)
    else:  # nothing of the traceback shown: rooted at the caller
        outer = outer_frames(caller)
        outer.reverse()
        values, trc = build_chain(outer, context_lines=context_lines, deep=deep, lazy=True)
    trc["exc_stack"] = lazy_text(format_exception, (exc, tb), format_exception_safe)
    # (dict's own get: LazyTrc's is Python code)
    trc["exc_context"] = lazy_text(exception_report, (exc, values, _dict_get(trc, "frame")))
    # (chain.describe; C: the usual exception in one call, see otrace/_frames.c)
    line = _c_exc_line(exc, _STATIC_EXC, EXC_LIMIT) if _c_exc_line is not None else None
    trc["exception"] = line if line is not None else exc_line(exc, EXC_LIMIT)
    # chained exceptions (raise ... from ...): see otrace.contexts.chain (the test is
    # chain.next_cause's, inline: most exceptions have no cause)
    if exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        add_causes(exc, values, trc, context_lines=context_lines, deep=deep)
    return values, trc


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
