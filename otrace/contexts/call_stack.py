"""The stack above a traced call, as a call context keeps it (``__trc["stack"]``).

Thread safety: any thread; the caches are read without a lock (see each).
"""

from __future__ import annotations

import traceback
from types import CodeType, FrameType

from otrace.contexts.frames import CODES_MAX, code_info, is_hidden, on_hide
from otrace.contexts.lazy import line_at
from otrace.contexts.lazytext import LazyText, lazy_text
from otrace.contexts.speedups import frames_walk as _frames_walk
from otrace.contexts.speedups import walk as _walk


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
    start = frame
    walked = _frames_walk(frame) if _frames_walk is not None else None
    if walked is not None:  # (C reading the interpreter's frames: otrace/_frames.c)
        codes, lastis = walked
    elif _walk is not None:  # the same walk in C (otrace/_speedups.c), under half the cost
        codes, lastis = _walk(frame)
    else:
        codes = []
        lastis = []
        code_append, lasti_append = codes.append, lastis.append
        while frame is not None:
            code_append(frame.f_code)
            lasti_append(frame.f_lasti)
            frame = frame.f_back
    if codes not in _SHOWN_STACKS:
        if all(map(_PLAIN.__contains__, map(id, codes))):
            _remember_shown(codes)
        else:
            codes, lastis = _checked_stack(start)
    return lazy_text(_format_stack, (codes, lastis))


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
            hidden = code_info(code)[4]
            if hidden is False:
                if len(plain) >= CODES_MAX:
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
# equality ``HIDDEN``'s set lookups use.  Cleared with _PLAIN.
_SHOWN_STACKS: tuple[list[CodeType], ...] = ()
_SHOWN_MAX = 8

# Code objects a stack walk shows without asking anything, by id.  The entry keeps its code
# alive, so while an id is here no other object has it: finding a code's id here is
# finding the code.  Cleared with the verdicts of CODES.
_PLAIN: dict[int, CodeType] = {}


def _format_stack(codes: list[CodeType], lastis: list[int]) -> str:
    summary = [
        (codes[i].co_filename, line_at(codes[i], lastis[i]), codes[i].co_name, None)
        for i in range(len(codes) - 1, -1, -1)
    ]
    return "".join(traceback.format_list(traceback.StackSummary.from_list(summary)))


def _forget() -> None:
    global _SHOWN_STACKS
    _PLAIN.clear()
    _SHOWN_STACKS = ()


on_hide(_forget)
