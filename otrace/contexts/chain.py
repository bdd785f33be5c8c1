"""Chained exceptions: the ``__cause__`` / ``__context__`` of a captured exception.

``raise Error(...) from exc`` (or an exception raised while handling another) leaves the
first exception's frames outside the final traceback.  :func:`add_causes` snapshots each
exception of the chain as its own frame chain -- a :class:`FrameContext` rooted at the frame
that raised it, ``__up`` towards where it was caught -- and keeps it in the context under the
name Python's traceback uses for the link (``__cause__`` for ``from``, ``__context__`` for an
exception raised while handling another; a suppressed context, ``from None``, is left out).
So ``cd __cause__`` browses the cause's frames, and the traceback page shows one group of
frames per exception.  Each node's ``__trc`` has ``exception`` ("Type: message") and
``relation``; the root's ``__trc["exc_chain"]`` lists the chain, innermost cause first.

Thread safety: runs where the exception is captured (any thread); reads only tracebacks.
"""

from __future__ import annotations

from typing import Any

from otrace.contexts.record import FrameContext
from otrace.contexts.safe import exc_line

MAX_CAUSES = 10
LINKS = ("__cause__", "__context__")


def next_cause(exc: BaseException) -> tuple[BaseException | None, str]:
    """The exception shown before ``exc`` in a traceback, and how it is linked."""
    if exc.__cause__ is not None:
        return exc.__cause__, "__cause__"
    if exc.__context__ is not None and not exc.__suppress_context__:
        return exc.__context__, "__context__"
    return None, ""


EXC_LIMIT = 500


def describe(exc: BaseException) -> str:
    """``Type: message``, bounded; runs none of the program's code (see ``exc_line``)."""
    return exc_line(exc, EXC_LIMIT)


def add_causes(
    exc: BaseException,
    values: dict[str, Any],
    trc: dict[str, Any],
    *,
    context_lines: int,
    deep: bool,
) -> None:
    """Attach ``exc``'s chain of causes to a captured context's root ``values``/``trc``."""
    trc.setdefault("exception", describe(exc))
    cause, relation = next_cause(exc)
    if cause is None:  # the usual case: nothing more to make
        return
    seen = {id(exc)}
    summary: list[tuple[str, str]] = []
    holder = values
    while cause is not None and id(cause) not in seen and len(summary) < MAX_CAUSES:
        seen.add(id(cause))
        from otrace.contexts.capture import build_chain
        from otrace.contexts.frames import traceback_frames

        tb = cause.__traceback__
        frames = traceback_frames(tb)
        if frames:
            caught = 1 if tb is not None and frames[0][0] is tb.tb_frame else 0
            node_values, node_trc = build_chain(
                frames,
                context_lines=context_lines,
                deep=deep,
                finished=len(frames) - caught,
                lazy=True,
            )
        else:  # never raised (set by hand): no frames, only what it says
            node_values, node_trc = {}, {"frame": ("?", 0, "?", None), "funcname": "?"}
        node_trc["exception"] = describe(cause)
        node_trc["relation"] = relation
        node = FrameContext(node_values, node_trc)
        holder[relation] = node
        summary.append((relation, node_trc["exception"]))
        holder = node
        cause, relation = next_cause(cause)
    if summary:
        trc["exc_chain"] = summary[::-1]
