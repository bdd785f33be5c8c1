"""Consoles: read lines, send them to a session in the otrace service, show what comes back.

A console is a client: it drives a :class:`~otrace.console.remote.RemoteSession` (a socket
to the service, in this process for the program's own terminal, or in ``otrace attach``) and
never touches the program's objects itself.  :class:`Console` is what every front end does
(results, announcements, ``repeat``, the confirmation of ``shutdown``, password prompts of a
locked session); :class:`PlainConsole` reads lines from any stream (pipes, scripts, tests).

``quit``, Ctrl-D and end of input detach the console; the program runs on.  A locked
session is unlocked by its password only (the service enforces it; no key gets past it).

Thread safety: :meth:`Console.run` runs in the console's thread; :meth:`Console.announce`
is called by the session's reader thread and serialises writes with a lock.
"""

from __future__ import annotations

import os
import select
import shlex
import threading
import time
from collections.abc import Callable
from typing import Any

from otrace.contexts.safe import terminal_text
from otrace.shell.commands.patching import edit_in_file


class Console:
    """What every front end does: show results and announcements, run repeat.

    :param backend: the session (a :class:`~otrace.console.remote.RemoteSession`).
    :param echo_callback: also given every piece of text this console writes.
    """

    def __init__(
        self,
        backend: Any,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        echo_callback: Callable[[str], Any] | None = None,
    ) -> None:
        self.backend = backend
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.echo_callback = echo_callback
        self._lock = threading.Lock()
        self.stopped = False
        self.detached_by = ""  # why run() ended: "quit", "eof", "service"
        backend.on_announce = self.announce
        backend.on_state = self.refresh

    # -- output -------------------------------------------------------------------------
    def _write(self, stream: Any, text: str) -> None:
        with self._lock:
            try:
                stream.write(text)
                stream.flush()
            except (OSError, ValueError):
                pass
        if self.echo_callback is not None:
            try:
                self.echo_callback(text)
            except Exception:
                pass

    def show(self, result) -> None:
        """Write a command's result: output to stdout, errors to stderr."""
        for stream, text, kind in result.chunks:
            if stream == "out":
                self._write(self.stdout, self.render(text, kind) + "\n")
            else:
                self._write(self.stderr, text + "\n")

    def render(self, text: str, kind: str) -> str:
        return text

    def announce(self, text: str) -> None:
        """Show a trace event (called on the session's reader thread); program data in it
        is escaped."""
        self._write(self.stderr, terminal_text(text) + "\n")

    # -- the loop -----------------------------------------------------------------------
    def read_line(self, prompt: str) -> str | None:
        """Read one line (None at end of input)."""
        raise NotImplementedError

    def read_secret(self, prompt: str) -> str | None:
        return self.read_line(prompt)

    def width(self) -> int:
        return 0

    def poll_interrupt(self) -> bool:
        """While a command runs: True if the operator pressed Ctrl-C."""
        return False

    def run(self) -> None:
        """Read and run lines until the console detaches (quit, Ctrl-D, end of input)."""
        backend = self.backend
        while not self.stopped and not backend.ended.is_set():
            secret = backend.secret
            try:
                if secret:
                    line = self.read_secret(secret)
                else:
                    line = self.read_line(terminal_text(backend.prompt()))
            except KeyboardInterrupt:
                self.show(backend.cancel())
                continue
            if backend.ended.is_set():
                break
            if line is None:
                if secret and backend.locked and self.can_reread():
                    self._write(self.stderr, "Locked: only the password unlocks this console\n")
                    continue
                if secret:
                    self.show(backend.cancel())  # Ctrl-D while setting a password
                    if backend.secret and not self.can_reread():
                        self.detached_by = "eof"
                        break
                    continue
                self.detached_by = "eof"
                break
            if not self.handle(line):
                break
        if backend.ended.is_set() and not self.detached_by:
            self.detached_by = "service"
            if backend.bye:
                self._write(self.stderr, f"otrace: {backend.bye}\n")
        backend.detach()

    def can_reread(self) -> bool:
        """Whether end of input can be followed by more input (a terminal's Ctrl-D)."""
        return False

    def execute(self, line: str):
        return self.backend.execute(
            line, self.width(), poll=self.poll_interrupt, on_edit=self.edit_text
        )

    def handle(self, line: str) -> bool:
        """Run one line; False when the console detaches."""
        result = self.execute(line)
        self.show(result)
        if result.action == "detach":
            self.detached_by = "quit"
            return False
        if result.action == "repeat":
            self.repeat(result.action_arg)
        elif result.action == "confirm" and not self.confirm(result.action_arg):
            self.detached_by = "quit"
            return False
        return not self.backend.ended.is_set()

    def confirm(self, line: str) -> bool:
        """Ask before running ``line`` (e.g. ``shutdown -y``); False if it detached us."""
        what = "Stop the program" if line.startswith("shutdown") else f"Run {line!r}"
        try:
            answer = self.read_line(f"{what}? [y/N] ")
        except KeyboardInterrupt:
            answer = None
        if answer is not None and answer.strip().lower() in ("y", "yes"):
            result = self.execute(line)
            self.show(result)
            return result.action != "detach"
        self._write(self.stderr, "Not confirmed\n")
        return True

    def repeat(self, line: str) -> None:
        """Run ``line`` every repeat_interval until input arrives (or 10000 times)."""
        interval = float(self.backend.state.get("repeat_interval", 0.2))
        for _ in range(10_000):
            result = self.execute(line)
            self.show_repeat(result)
            if result.err or interval <= 0 or self.stopped or result.action:
                break
            if self.wait_for_input(interval):
                break
        self.end_repeat()

    def show_repeat(self, result) -> None:
        self.show(result)

    def end_repeat(self) -> None:
        pass

    def wait_for_input(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s; True if the operator typed something meanwhile."""
        try:
            ready, _, _ = select.select([self.stdin], [], [], timeout)
            return bool(ready)
        except (OSError, ValueError, TypeError):
            time.sleep(timeout)
            return False

    # -- editing ------------------------------------------------------------------------
    def edit_text(self, text: str, label: str, editor: str = "") -> str:
        """Edit ``text`` with the operator's editor (``editor``, else $VISUAL, $EDITOR, vi)."""
        return run_editor(text, label, editor)

    def refresh(self) -> None:
        """Redraw the prompt if one is shown (its text may have changed).  Any thread."""

    def stop(self) -> None:
        self.stopped = True


def run_editor(text: str, label: str, editor: str = "") -> str:
    """Edit ``text`` in a temporary .py file, synchronously; the saved text."""
    command = editor or os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return edit_in_file(shlex.split(command), text, label)


class PlainConsole(Console):
    """Line reading from any stream (no editing, no completion)."""

    def read_line(self, prompt: str) -> str | None:
        self._write(self.stdout, prompt)
        try:
            line = self.stdin.readline()
        except (OSError, ValueError):
            return None
        if not line:
            self._write(self.stdout, "\n")
            return None
        return line.rstrip("\r\n")
