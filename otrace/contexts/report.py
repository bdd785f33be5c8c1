"""The texts of a captured exception: its traceback (``exc_stack``) and the verbose report of
every frame's source and variables (``exc_context``).

Both are rendered only when somebody reads them (through :class:`~otrace.contexts.lazytext.LazyText`),
on the reader's thread; the ``_safe`` variants run no program code (each exception's line is
:func:`~otrace.contexts.safe.exc_line`, values go through ``safe_repr``).

Thread safety: every function may be called from any thread.
"""

from __future__ import annotations

import linecache
import traceback
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from otrace.contexts.safe import exc_line, safe_repr, safe_str

FrameLine = tuple[str, int, str, "list[str] | None"]


def format_exception(exc: BaseException, tb: TracebackType | None) -> str:
    return "".join(traceback.format_exception(type(exc), exc, tb))


def format_exception_safe(exc: BaseException, tb: TracebackType | None) -> str:
    """:func:`format_exception` without program code: each exception's line is
    :func:`~otrace.contexts.safe.exc_line` instead of its ``str``."""
    from otrace.contexts.chain import next_cause

    chain: list[tuple[BaseException, TracebackType | None, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    trace, relation = tb, ""
    while current is not None and id(current) not in seen and len(chain) < 11:
        seen.add(id(current))
        chain.append((current, trace, relation))
        current, relation = next_cause(current)
        trace = current.__traceback__ if current is not None else None
    parts: list[str] = []
    for item, trace, relation in reversed(chain):
        if trace is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_list(traceback.extract_tb(trace)))
        parts.append(exc_line(item, 2000) + "\n")
        if relation:
            parts.append("\n" + _RELATIONS[relation] + "\n\n")
    return "".join(parts)


_RELATIONS = {
    "__cause__": "The above exception was the direct cause of the following exception:",
    "__context__": "During handling of the above exception, another exception occurred:",
}


def exception_report(exc: BaseException, values: dict[str, Any], frame: FrameLine | None) -> str:
    return render_report(exc, _chain_frames(values, {"frame": frame}) if frame else [])


def report_of_record(header: str, values: dict[str, Any], frame: FrameLine | None) -> str:
    """``exc_context`` of a stored context: the report made from its captured frames."""
    return render_report(header, _chain_frames(values, {"frame": frame}) if frame else [])


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
    exc: BaseException | str, frames: Iterable[tuple[str, int, str, dict[str, Any]]]
) -> str:
    """A verbose report: every frame's surrounding source and its variables' values.

    ``exc``: the exception, or the headline already made of it.
    """
    head = exc if isinstance(exc, str) else f"{type(exc).__name__}: {safe_str(exc)}"
    parts = [head, ""]
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
