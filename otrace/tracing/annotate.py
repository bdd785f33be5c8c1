"""``append_traceback``: an exception leaving traced functions carries its trace id.

With the parameter on, an exception (other than the ones that end iteration) that leaves a
traced function gets a note (PEP 678, printed under the exception's message by every
traceback) reading ``~<trace id>`` followed by the innermost traceback, i.e. the frames from
that function down to the ``raise``.  When it then leaves an outer traced function, the note's
id is replaced by the outer id -- the traceback stays the innermost one -- and the outer
context gets an entry ``~<inner id>`` (value None) linking the two contexts.  So whoever
finally catches or prints the exception sees the outermost id and where it was raised.

The original put this text into the exception's message (its first argument); a note keeps
``args`` as the program made them and works for every exception type.

Called from the traced thread, inside the engine's exception hook; never raises.
"""

from __future__ import annotations

import os
import re
import traceback
from typing import Any

from otrace.contexts.record import TraceContext
from otrace.contexts.safe import exc_line

_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_MARK = re.compile(r"^~(\S+:\S+:\S+)$")
ITERATION_ENDS = (StopIteration, StopAsyncIteration, GeneratorExit)


def _innermost_traceback(exc: BaseException) -> str:
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_OWN_DIR)
    ]
    return "".join(traceback.format_list(frames)).rstrip("\n")


def annotate(exc: BaseException, ctx: TraceContext) -> None:
    """Add or update ``exc``'s trace-id note for the new context ``ctx`` (see module doc)."""
    if isinstance(exc, ITERATION_ENDS):
        return
    notes: list[Any] | None = getattr(exc, "__notes__", None)
    for i, note in enumerate(notes or []):
        if not isinstance(note, str):
            continue
        first, _, rest = note.partition("\n")
        older = _MARK.match(first)
        if older:
            notes[i] = f"~{ctx.id}\n{rest}" if rest else f"~{ctx.id}"  # type: ignore[index]
            ctx[f"~{older.group(1)}"] = None
            break
    else:
        tb_text = _innermost_traceback(exc)
        exc.add_note(f"~{ctx.id}\n{tb_text}" if tb_text else f"~{ctx.id}")
    trc = ctx.get("__trc")
    if isinstance(trc, dict):
        # the exception's line and its notes, without the program's __str__ (see exc_line)
        notes = getattr(exc, "__notes__", None) or []
        trc["exception"] = exc_line(exc, 2000) + "".join("\n" + n for n in notes if type(n) is str)
