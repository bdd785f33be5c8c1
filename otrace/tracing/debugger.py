"""Starting pdb (or ipdb) in a traced thread, and handing the terminal over to it.

The runtime's bus carries :class:`~otrace.events.DebuggerHandover` with ``"enter"`` just
before the debugger takes the terminal and ``"leave"`` when the operator continues or quits,
so the console (a subscriber) can stop reading its own prompt meanwhile.  Subscribers run in
the traced thread and must not block long.  :func:`set_debugger_streams` points pdb at other
streams (tests use it to script a session).

The debugger stops at the first line of program code: frames of otrace's own modules are
skipped, so a call trace stops at the traced function's ``def`` line (``--Call--``) and a
``traceassert`` stops in its caller.
"""

from __future__ import annotations

import pdb
import sys
from typing import IO, TYPE_CHECKING, Any

from otrace import _default
from otrace.events import DebuggerHandover
from otrace.log import get_logger

if TYPE_CHECKING:
    from otrace.tracing.registry import Tracer

log = get_logger("debugger")


def set_debugger_streams(stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> None:
    """Use these streams for the default runtime's next debuggers (None: stdin/stdout)."""
    _default.get().tracer.debugger_streams = (stdin, stdout)


class OtracePdb(pdb.Pdb):
    """pdb that skips otrace's frames and tells the hooks when the operator lets go."""

    def __init__(self, tracer: Tracer, **kwargs: Any) -> None:
        self._tracer = tracer
        stdin, stdout = tracer.debugger_streams
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
            self._tracer.events.emit(DebuggerHandover("leave"))

    def set_continue(self) -> None:
        super().set_continue()
        self._leave()

    def set_quit(self) -> None:
        super().set_quit()
        self._leave()


def start_debugger(kind: str = "pdb", tracer: Tracer | None = None) -> None:
    """Start ``pdb`` (or ``ipdb`` if installed) in the calling (traced) thread.

    Returns at once; the debugger stops at the next line of non-otrace code in this thread.
    Call it as the very last thing before returning to program code.
    """
    if tracer is None:
        tracer = _default.get().tracer
    assert tracer is not None
    tracer.events.emit(DebuggerHandover("enter"))
    if kind == "ipdb" and tracer.debugger_streams == (None, None):
        try:
            import ipdb
        except ImportError:
            pass
        else:  # pragma: no cover - ipdb is optional and not installed in tests
            ipdb.set_trace(sys._getframe(1))
            return
    OtracePdb(tracer).set_trace(sys._getframe(1))
