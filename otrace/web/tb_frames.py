"""The traceback page's frames: read from a context chain, grouped by chained exception.

Nothing here touches a live frame or imports Tornado: the root of a trace context and every
``__up`` link carry ``__trc`` with ``frame`` = ``(filename, lineno, funcname, source
lines)`` and ``module``, so live and post-mortem pages read frames the same way.

Thread safety: pure data; any thread.
"""

from __future__ import annotations

import builtins
import os
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from otrace.contexts.capture import module_globals
from otrace.contexts.record import parse_trace_id
from otrace.contexts.safe import safe_repr, safe_str

LINK_KEYS = frozenset({"__trc", "__up", "__down"})
MAX_FRAMES = 2000
MAX_VALUE = 50_000


def context_id(ctx: Mapping[str, Any]) -> str:
    """The trace id of a context (attribute of a live one, ``__trc["id"]`` of a stored one)."""
    cid = getattr(ctx, "id", None)
    if isinstance(cid, str):
        return cid
    trc = ctx.get("__trc")
    if isinstance(trc, Mapping) and isinstance(trc.get("id"), str):
        return trc["id"]
    return ""


# -- frames --------------------------------------------------------------------------------
_LIB_DIRS = tuple(
    os.path.normcase(p) + os.sep
    for p in {
        sysconfig.get_paths().get("stdlib", ""),
        sysconfig.get_paths().get("purelib", ""),
        sysconfig.get_paths().get("platlib", ""),
    }
    if p
)


def is_library_file(filename: str) -> bool:
    """True for the standard library, installed packages and frozen modules."""
    if filename.startswith("<"):
        return True
    norm = os.path.normcase(filename)
    if norm.startswith(_LIB_DIRS):
        return True
    return any(part in norm for part in ("site-packages", "dist-packages"))


@dataclass
class FrameView:
    """One frame as the page shows it, with the session's own copy of its locals."""

    index: int
    filename: str
    lineno: int
    funcname: str
    module: str
    lines: list[str]
    first_line: int
    locals: dict[str, Any]
    globals: dict[str, Any]
    library: bool

    def source(self) -> list[tuple[int, str, bool]]:
        """(line number, text, is the current line) for every captured line."""
        return [
            (self.first_line + i, text.rstrip("\r\n"), self.first_line + i == self.lineno)
            for i, text in enumerate(self.lines)
        ]

    def local_items(self) -> list[tuple[str, str]]:
        """(name, bounded repr) of the captured locals, sorted by name."""
        return [
            (k, safe_repr(v, 400))
            for k, v in sorted(self.locals.items(), key=lambda kv: str(kv[0]))
        ]


def _first_line(filename: str, lineno: int, lines: list[str]) -> int:
    """Where the captured lines start; they were taken centred on ``lineno``.

    The capture does not record its window, so the centre is assumed; when the file is
    still readable here the guess is checked against it, and corrected if it is off
    (a window cut short by the end of the file).
    """
    n = len(lines)
    guess = max(1, lineno - n // 2)
    try:
        import linecache

        current = linecache.getline(filename, lineno)
    except Exception:
        current = ""
    if not current or not (guess <= lineno < guess + n) or lines[lineno - guess] == current:
        return guess
    for i, text in enumerate(lines):
        if text == current and lineno - i >= 1:
            return lineno - i
    return guess


def chain_frames(ctx: Mapping[str, Any], *, live: bool, start: int = 0) -> list[FrameView]:
    """The frames of a context chain, outermost first, each with copied locals.

    ``ctx`` is the root (the innermost frame); ``__up`` leads outwards.  Indices start at
    ``start`` (a chained exception's frames follow the ones before them on the page).
    """
    nodes: list[Mapping[str, Any]] = []
    seen: set[int] = set()
    node: Any = ctx
    while isinstance(node, Mapping) and id(node) not in seen and len(nodes) < MAX_FRAMES:
        seen.add(id(node))
        nodes.append(node)
        node = node.get("__up")
    nodes.reverse()
    fresh: dict[str, dict[str, Any]] = {}
    frames = []
    for index, node in enumerate(nodes):
        trc = node.get("__trc")
        trc = trc if isinstance(trc, Mapping) else {}
        info = trc.get("frame")
        if isinstance(info, (tuple, list)) and len(info) >= 3:
            filename, lineno, funcname = str(info[0]), int(info[1] or 0), str(info[2])
            lines = [str(x) for x in (info[3] or [])] if len(info) > 3 else []
        else:
            filename, lineno, funcname, lines = "?", 0, str(trc.get("funcname", "?")), []
        module = str(trc.get("module") or "")
        values = {k: v for k, v in node.items() if k not in LINK_KEYS}
        frames.append(
            FrameView(
                index=start + index,
                filename=filename,
                lineno=lineno,
                funcname=funcname,
                module=module,
                lines=lines,
                first_line=_first_line(filename, lineno, lines) if lines else lineno,
                locals=values,
                globals=frame_globals(module, live, fresh),
                library=is_library_file(filename),
            )
        )
    return frames


def frame_globals(module: str, live: bool, fresh: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Globals for evaluating in a frame of ``module`` (see the module docstring)."""
    ns = module_globals(module, live)
    if ns is not None:
        return ns
    if module not in fresh:
        fresh[module] = {"__name__": module or "__otrace_eval__", "__builtins__": builtins}
    return fresh[module]


def describe(ctx: Mapping[str, Any]) -> tuple[str, str]:
    """(headline, the full exception text or "") of a context, for the page's header."""
    trc = ctx.get("__trc")
    trc = trc if isinstance(trc, Mapping) else {}
    stack = safe_str(trc.get("exc_stack", "") or "", MAX_VALUE)
    lines = [line for line in stack.splitlines() if line.strip()]
    if lines:
        return lines[-1], stack
    tid = context_id(ctx)
    try:
        kind, name, ctxid, _ = parse_trace_id(tid)
        return f"{kind[:-1] if kind.endswith('s') else kind} in {name} ({ctxid})", ""
    except ValueError:
        return tid or "trace context", ""


# -- chained exceptions --------------------------------------------------------------------
RELATION_TEXT = {
    "__cause__": "The above exception was the direct cause of the following exception:",
    "__context__": "During handling of the above exception, another exception occurred:",
}


@dataclass
class FrameGroup:
    """The frames of one exception of a chain: ``frames[start:end]`` of the page session.

    ``relation`` says how the *next* group follows from this one (empty for the last).
    """

    title: str
    start: int
    end: int
    relation: str = ""

    @property
    def relation_text(self) -> str:
        return RELATION_TEXT.get(self.relation, "")


def exception_groups(
    ctx: Mapping[str, Any], *, live: bool, title: str = ""
) -> tuple[list[FrameView], list[FrameGroup]]:
    """Every exception of a context's chain as its own group of frames, oldest cause first.

    The causes are the ``__cause__`` / ``__context__`` entries captured with the context
    (see :mod:`otrace.contexts.chain`); without any, one group holds the whole chain.
    """
    nodes: list[tuple[Mapping[str, Any], str]] = [(ctx, "")]
    seen = {id(ctx)}
    node: Any = ctx
    while len(nodes) < 20:
        link = next(
            (k for k in ("__cause__", "__context__") if isinstance(node.get(k), Mapping)), ""
        )
        if not link or id(node[link]) in seen:
            break
        node = node[link]
        seen.add(id(node))
        nodes.append((node, link))
    frames: list[FrameView] = []
    groups: list[FrameGroup] = []
    for i in range(len(nodes) - 1, -1, -1):
        node, relation = nodes[i]  # how the exception after this one follows from it
        start = len(frames)
        frames.extend(chain_frames(node, live=live, start=start))
        trc = node.get("__trc")
        text = safe_str(trc.get("exception", ""), 500) if isinstance(trc, Mapping) else ""
        groups.append(FrameGroup(title if i == 0 and title else text, start, len(frames), relation))
    return frames, groups
