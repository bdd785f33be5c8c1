"""Snapshots of frames, arguments and exceptions, taken when a trace event fires.

Capturing runs on the traced program's thread, so it is kept cheap: locals are copied
shallowly (deeply only with ``deep_copy``), source lines come from ``linecache`` without
touching the disk again, and the long texts (``exc_stack``, ``exc_context``, ``stack``) are
rendered only when somebody reads them.

Frames of otrace's own wrappers are never shown: a code object registered with
:func:`hide_code`, or a frame with a true local ``__tracebackhide__``, is skipped.

Thread safety: every function may be called from any thread.
"""

from __future__ import annotations

import copy
import linecache
import sys
import traceback
from collections.abc import Callable, Iterable
from types import CodeType, FrameType, TracebackType
from typing import Any

from otrace.contexts.record import FrameContext
from otrace.contexts.safe import safe_repr, safe_str

# Code objects of otrace's own wrappers, hidden from captured stacks.  Process-wide like the
# code objects themselves; only ever added to (a registry of constants, not runtime state).
_HIDDEN: set[CodeType] = set()
FrameLine = tuple[str, int, str, "list[str] | None"]


def hide_code(*codes: CodeType) -> None:
    """Never show frames running these code objects (otrace's own wrappers)."""
    _HIDDEN.update(codes)


def is_hidden(frame: FrameType) -> bool:
    if frame.f_code in _HIDDEN:
        return True
    if "__tracebackhide__" not in frame.f_code.co_varnames:
        return False
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
    """

    __slots__ = ("_args", "_render", "_text")

    def __init__(self, render: Callable[..., str], *args: Any):
        self._render: Callable[..., str] | None = render
        self._args = args
        self._text = ""

    def __str__(self) -> str:
        if self._render is not None:
            try:
                self._text = self._render(*self._args)
            except Exception as exc:  # a debugger's report must not fail the reader
                self._text = f"<could not render: {safe_repr(exc)}>"
            self._render, self._args = None, ()
        return self._text

    def __repr__(self) -> str:
        if self._render is not None:
            return "<text rendered when read>"
        return repr(self._text) if len(self._text) <= 200 else repr(self._text[:200]) + "..."

    def __getstate__(self) -> str:
        return str(self)

    def __setstate__(self, state: str) -> None:
        self._render, self._text = None, state

    def __reduce__(self):
        return (_lazy_from_text, (str(self),))


def _lazy_from_text(text: str) -> LazyText:
    lt = LazyText(str, text)
    str(lt)
    return lt


def source_lines(filename: str, lineno: int, context: int) -> list[str] | None:
    """Up to ``context`` lines centred on ``lineno`` (None when context is 0 or no source)."""
    if context <= 0:
        return None
    start = max(1, lineno - context // 2)
    # one cached list per file, sliced: much cheaper than a getline() per line
    return linecache.getlines(filename)[start - 1 : start - 1 + context] or None


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


def frame_locals(frame: FrameType) -> dict[str, Any]:
    """A copy of ``frame``'s variables that leaves nothing behind in the frame.

    Before 3.13, reading ``f_locals`` of a function frame fills a dict cached on the frame
    with the variables' current values, and it stays there until the frame returns: an
    object the function ``del``s later would live on.  So when that dict was made by this
    read (nobody else holds it), it is emptied again; the next read refills it anyway.
    """
    try:
        cached = frame.f_locals
        out = dict(cached)
    except Exception:
        return {}
    if (
        _CACHES_LOCALS
        and frame.f_code.co_flags & _CO_OPTIMIZED
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
    code = frame.f_code
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
    while frame is not None:
        if not is_hidden(frame):
            out.append((frame, frame.f_lineno))
        frame = frame.f_back
    return out


def traceback_frames(tb: TracebackType | None) -> list[tuple[FrameType, int]]:
    """The frames of a traceback as (frame, line), outermost first, hidden ones left out."""
    out = []
    while tb is not None:
        if not is_hidden(tb.tb_frame):
            out.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return out


def build_chain(
    frames: list[tuple[FrameType, int]],
    *,
    context_lines: int,
    deep: bool,
    outer_locals: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Snapshot ``frames`` (outermost first) as a chain; return the innermost's (values, trc).

    Every frame gets ``__trc`` with ``frame``, ``funcname`` and ``module`` (the name of its
    globals' module, so evaluation can find the globals again, even post-mortem); each outer one is a
    :class:`FrameContext` reached through ``__up``, and links back with ``__down`` (the
    root's own ``__down`` link is made when the :class:`TraceContext` is constructed).  The
    root's ``__trc`` also gets ``framestack``, ``where`` and ``argvalues``.  With
    ``outer_locals`` False only the innermost frame's locals are copied.  An outer frame
    running module-level code keeps no variables (they are the module's globals, browsable
    at ``/osh/globals``), only its ``__trc``.
    """
    framestack: list[FrameLine] = []
    previous: FrameContext | None = None
    last = len(frames) - 1
    root_values: dict[str, Any] = {}
    root_trc: dict[str, Any] = {}
    for i, (frame, lineno) in enumerate(frames):
        code = frame.f_code
        info: FrameLine = (
            code.co_filename,
            lineno,
            code.co_name,
            source_lines(code.co_filename, lineno, context_lines),
        )
        framestack.append(info)
        trc = {
            "frame": info,
            "funcname": code.co_name,
            "module": frame.f_globals.get("__name__", ""),
        }
        if i == last:
            values = snapshot(frame_locals(frame), deep)
            root_values, root_trc = values, trc
            if previous is not None:
                root_values["__up"] = previous
        else:
            # A module-level frame's variables are its module's globals (see /osh/globals):
            # copying a whole namespace per context would cost more than it shows.
            keep = outer_locals and (
                bool(code.co_flags & _CO_OPTIMIZED) or frame.f_locals is not frame.f_globals
            )
            node = FrameContext(snapshot(frame_locals(frame), deep) if keep else {}, trc)
            if previous is not None:
                node["__up"] = previous
                previous["__down"] = node
            previous = node
    root_trc["framestack"] = framestack
    root_trc["where"] = "-->".join(f[2] for f in framestack)
    if frames:
        root_trc["argvalues"] = arg_names(frames[-1][0])
    return root_values, root_trc


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
    outer = list(reversed(outer_frames(caller)))
    frames = outer + inner
    values, trc = build_chain(frames, context_lines=context_lines, deep=deep)
    trc["exc_stack"] = LazyText(_format_exception, exc, tb)
    trc["exc_context"] = LazyText(_report, exc, values, trc.get("frame"))
    # chained exceptions (raise ... from ...): see otrace.contexts.chain
    from otrace.contexts.chain import add_causes

    add_causes(exc, values, trc, context_lines=context_lines, deep=deep)
    return values, trc


def _format_exception(exc: BaseException, tb: TracebackType | None) -> str:
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _report(exc: BaseException, values: dict[str, Any], frame: FrameLine | None) -> str:
    return render_report(exc, _chain_frames(values, {"frame": frame}) if frame else [])


def _chain_frames(
    values: dict[str, Any], trc: dict[str, Any]
) -> list[tuple[str, int, str, dict[str, Any]]]:
    """(file, line, function, captured locals) for the root and every ``__up``, outermost first."""
    out = []
    node: dict[str, Any] | None = values
    info = trc
    while node is not None:
        filename, lineno, name, _ = info["frame"]
        out.append(
            (filename, lineno, name, {k: v for k, v in node.items() if not k.startswith("__")})
        )
        node = node.get("__up")
        info = node["__trc"] if node is not None else {}
    return out[::-1]


def render_report(
    exc: BaseException, frames: Iterable[tuple[str, int, str, dict[str, Any]]]
) -> str:
    """A verbose report: every frame's surrounding source and its variables' values."""
    parts = [f"{type(exc).__name__}: {safe_str(exc)}", ""]
    for filename, lineno, name, loc in frames:
        parts.append(f"{filename}:{lineno} in {name}()")
        start = max(1, lineno - 2)
        for n in range(start, lineno + 3):
            line = linecache.getline(filename, n)
            if line:
                parts.append(f"{'=>' if n == lineno else '  '}{n:5d} {line.rstrip()}")
        for key in sorted(loc):
            parts.append(f"        {key} = {safe_repr(loc[key], 300)}")
        parts.append("")
    return "\n".join(parts)


def capture_call_stack(frame: FrameType | None) -> LazyText:
    """The call stack above ``frame`` as text, formatted when read."""
    summary = [
        (f.f_code.co_filename, line, f.f_code.co_name, None)
        for f, line in reversed(outer_frames(frame))
    ]
    return LazyText(_format_stack, summary)


def _format_stack(summary: list) -> str:
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
        task = aio.current_task()
    except RuntimeError:
        return None
    return task.get_name() if task is not None else None
