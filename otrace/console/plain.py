"""The plain console: reads lines from a stream, writes results to streams.

Used when standard input is not a terminal (pipes, CI, tests driving the shell) and as the
base of the terminal console.  It blocks in ``readline`` while idle, so an idle shell costs
the program nothing.

Thread safety: :meth:`Console.run` runs in the shell thread; :meth:`Console.announce` may be
called from any thread (trace events) and serialises writes with a lock.
"""

from __future__ import annotations

import select
import threading
import time
from typing import Any

from otrace.contexts.safe import terminal_text


class Console:
    """What every front end does: show results and announcements, run repeat and lock."""

    def __init__(self, shell, stdin, stdout, stderr):
        self.shell = shell
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self._lock = threading.Lock()
        self.stopped = False

    # -- output -------------------------------------------------------------------------
    def _write(self, stream: Any, text: str) -> None:
        with self._lock:
            try:
                stream.write(text)
                stream.flush()
            except (OSError, ValueError):
                pass
        if self.shell.echo_callback is not None:
            try:
                self.shell.echo_callback(text)
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
        """Show a trace event (from any thread); program data in it is escaped."""
        self._write(self.stderr, terminal_text(text) + "\n")

    # -- the loop -----------------------------------------------------------------------
    def read_line(self, prompt: str) -> str | None:
        """Read one line (None at end of input)."""
        raise NotImplementedError

    def run(self) -> None:
        """Read and run lines until quit or end of input."""
        while not self.stopped:
            try:
                line = self.read_line(terminal_text(self.shell.session.prompt()))
            except KeyboardInterrupt:
                self.shell.session.cancel_code()
                continue
            if line is None:
                break
            if not self.handle(line):
                break

    def handle(self, line: str) -> bool:
        """Run one line; False when the shell should stop."""
        result = self.shell.session.execute(line)
        self.show(result)
        if result.action == "quit":
            return False
        if result.action == "repeat":
            self.repeat(result.action_arg)
        elif result.action == "lock":
            return self.lock()
        return True

    def repeat(self, line: str) -> None:
        """Run ``line`` every repeat_interval until input arrives (or 10000 times)."""
        params = self.shell.session.params
        for _ in range(10_000):
            result = self.shell.session.execute(line)
            self.show_repeat(result)
            if result.err or params.repeat_interval <= 0 or self.stopped:
                break
            if self.wait_for_input(params.repeat_interval):
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

    def lock(self) -> bool:
        """Lock until the password is typed; False if input ended (the shell stops)."""
        from otrace.passwords import encrypt_password, verify_password

        params = self.shell.session.params
        while not params.password:
            first = self.read_secret("Set password: ")
            if first is None:
                return False
            if not first:
                self._write(self.stderr, "Lock cancelled\n")
                return True
            if self.read_secret("Confirm password: ") == first:
                params.set("password", encrypt_password(first))
            else:
                self._write(self.stderr, "Passwords differ; try again\n")
        while True:
            attempt = self.read_secret("Enter password to unlock: ")
            if attempt is None:
                return False
            if verify_password(attempt, params.password):
                return True

    def read_secret(self, prompt: str) -> str | None:
        return self.read_line(prompt)

    def refresh(self) -> None:
        """Redraw the prompt if one is shown (its text may have changed).  Any thread."""

    def stop(self) -> None:
        self.stopped = True


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
