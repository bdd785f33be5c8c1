"""The ``%otrace`` and ``%%otrace`` magics (the only module of otrace that imports IPython).

``%otrace open [--trust] FILE [field=value ...]``  open a context file under /osh/pickled
``%otrace get PATH``                               the object at PATH; a context displays as
                                                   the traceback page draws it
``%otrace LINE``                                   any shell line: ls, cd, ls -l, pwd, view ...
``%%otrace frame N [PATH]``                        run the cell in frame N of the current
                                                   context (its stored locals)

Thread safety: magics run on the kernel's thread.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

from IPython.core.error import UsageError as IPythonUsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from otrace.contexts.safe import escape_controls
from otrace.errors import OTraceError
from otrace.jupyter.display import ContextView
from otrace.jupyter.shell import NotebookShell


@magics_class
class OTraceMagics(Magics):
    """``%otrace`` (a shell line) and ``%%otrace frame N`` (a cell run in a stored frame)."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.osh = NotebookShell()

    @line_cell_magic
    def otrace(self, line: str, cell: str | None = None) -> Any:
        """otrace's shell in a notebook: %otrace open FILE, ls, cd PATH, ls -l, get PATH;
        %%otrace frame N runs the cell in frame N of the current context."""
        try:
            if cell is None:
                return self._line(line)
            view, index = self._frame(line)
        except OTraceError as exc:
            raise IPythonUsageError(escape_controls(str(exc))) from None
        # the cell's own errors (a placeholder touched, say) show as in any cell
        return view.run(cell, index)

    def _line(self, line: str) -> Any:
        words = _split(line)
        if not words:
            raise IPythonUsageError("usage: %otrace open FILE | get PATH | any shell line")
        if words[0] == "open":
            sys.stdout.write(self.osh.open(words[1:]) + "\n")
            return None
        if words[0] == "get":
            if len(words) > 2:
                raise IPythonUsageError("usage: %otrace get PATH")
            return self.osh.get(words[1] if len(words) > 1 else ".")
        out, err = self.osh.execute(line)
        if err:
            sys.stderr.write(err)
        return out if out else None

    def _frame(self, line: str) -> tuple[ContextView, int]:
        words = _split(line)
        if not words or words[0] != "frame" or len(words) not in (2, 3):
            raise IPythonUsageError("usage: %%otrace frame N [PATH]")
        try:
            index = int(words[1])
        except ValueError:
            raise IPythonUsageError(f"frame: {words[1]!r} is not a frame number") from None
        view = self.osh.current(words[2] if len(words) == 3 else "")
        try:
            view.frame(index)
        except IndexError as exc:
            raise IPythonUsageError(str(exc)) from None
        return view, index


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise IPythonUsageError(f"cannot parse {line!r}: {exc}") from None
