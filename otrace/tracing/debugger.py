"""Starting pdb (or ipdb) in a traced thread, and handing the terminal over to it.

The console registers a callable in :data:`DEBUGGER_HOOKS`; it is called with ``"enter"``
just before the debugger takes the terminal and with ``"leave"`` when the operator continues
or quits, so the console can stop reading its own prompt meanwhile.  Hooks run in the traced
thread and must not block long.  :func:`set_debugger_streams` points pdb at other streams
(tests use it to script a session).

The debugger stops at the first line of program code: frames of otrace's own modules are
skipped, so a call trace stops at the traced function's ``def`` line (``--Call--``) and a
``traceassert`` stops in its caller.
"""

from __future__ import annotations

import pdb
import sys
from collections.abc import Callable
from typing import IO, Any

from otrace.log import get_logger

log = get_logger("debugger")

DEBUGGER_HOOKS: list[Callable[[str], None]] = []
_streams: tuple[IO[str] | None, IO[str] | None] = (None, None)


def set_debugger_streams(stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> None:
    """Use these streams for the next debuggers (None: the process's stdin/stdout)."""
    global _streams
    _streams = (stdin, stdout)


def _notify(event: str) -> None:
    for hook in list(DEBUGGER_HOOKS):
        try:
            hook(event)
        except Exception:
            log.exception("debugger hook failed")


class OtracePdb(pdb.Pdb):
    """pdb that skips otrace's frames and tells the hooks when the operator lets go."""

    def __init__(self, **kwargs: Any) -> None:
        stdin, stdout = _streams
        super().__init__(
            stdin=stdin,
            stdout=stdout,
            skip=["otrace", "otrace.*"],
            nosigint=True,
            readrc=False,
            **kwargs,
        )
        self._left = False

    def _leave(self) -> None:
        if not self._left:
            self._left = True
            _notify("leave")

    def set_continue(self) -> None:
        super().set_continue()
        self._leave()

    def set_quit(self) -> None:
        super().set_quit()
        self._leave()


def start_debugger(kind: str = "pdb") -> None:
    """Start ``pdb`` (or ``ipdb`` if installed) in the calling (traced) thread.

    Returns at once; the debugger stops at the next line of non-otrace code in this thread.
    Call it as the very last thing before returning to program code.
    """
    _notify("enter")
    if kind == "ipdb" and _streams == (None, None):
        try:
            import ipdb  # type: ignore[import-not-found]
        except ImportError:
            pass
        else:  # pragma: no cover - ipdb is optional and not installed in tests
            ipdb.set_trace(sys._getframe(1))
            return
    OtracePdb().set_trace(sys._getframe(1))
