"""Handing the program's terminal to pdb (``trace -a pdb``) and taking it back.

pdb runs on a traced thread and reads the real terminal; while it does, the console draws
no prompt and program output goes straight out.  When pdb lets go (``continue``), the
prompt comes back.  Only the local console (the program's own terminal) does this.

Thread safety: :meth:`PdbHandover.on_debugger` is called on the traced thread; the rest on
the console's thread or its prompt loop.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

SUSPENDED = object()  # a prompt left because a debugger took the terminal


class PdbHandover:
    """Mixin for :class:`~otrace.console.terminal.TerminalConsole`."""

    _state: threading.RLock
    _loop: Any
    _prompting: bool
    stopped: bool

    def _init_handover(self) -> None:
        self._terminal_free = threading.Event()  # cleared while pdb owns the terminal
        self._terminal_free.set()
        self._out_of_prompt = threading.Event()  # set while no prompt is on the screen
        self._out_of_prompt.set()

    def on_debugger(self, event: str) -> None:
        """pdb starts ("enter") or lets go ("leave") in a traced thread.  Any thread."""
        if event == "enter":
            with self._state:
                self._terminal_free.clear()
                loop = self._loop if self._prompting else None
            if loop is not None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._suspend_prompt)
                # let the prompt leave the screen before pdb writes to it (bounded wait)
                self._out_of_prompt.wait(2.0)
            self._write(  # type: ignore[attr-defined]
                self.stderr,  # type: ignore[attr-defined]
                "***otrace shell suspended while pdb runs (continue to return)\n",
            )
        else:
            self._terminal_free.set()

    def _check_terminal(self) -> None:
        # pdb may have taken the terminal while this prompt was starting
        if not self._terminal_free.is_set():
            self._suspend_prompt()

    def _suspend_prompt(self) -> None:
        app = self.prompt_session.app  # type: ignore[attr-defined]
        if app.is_running and app.future is not None and not app.future.done():
            app.exit(result=SUSPENDED)

    def _wait_for_terminal(self) -> None:
        # the 0.5 s wake-ups only happen while pdb runs, to notice stop()
        while not self._terminal_free.wait(0.5) and not self.stopped:
            pass
