"""Programs in a real terminal for the tests: a pane of a private tmux server.

Every :class:`TmuxPane` starts its own tmux server (``tmux -L`` with a unique socket name), so
tests running at the same time never see each other's sessions.  Keys go in with
``send-keys``, the screen comes back with ``capture-pane``; tests wait for what the program
shows (:meth:`TmuxPane.wait_for`, :func:`wait_until`), never for a fixed time.

Used by tests/console, tests/service, tests/fleet and tests/compat.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")
POLL = 0.05  # how often a wait looks again (tmux answers in a few ms)
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def wait_until(check: Callable[[], T], timeout: float, failure: Callable[[], str]) -> T:
    """Call ``check`` until it returns something true and return that; after ``timeout``
    seconds, AssertionError with ``failure()`` (which says what was seen instead)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(failure())
        time.sleep(POLL)


class TmuxPane:
    """``command`` (a shell command line; None: a shell) in a ``width`` x ``height`` pane.

    :param cwd: the pane's working directory.
    :param scrollback: how far back :meth:`screen` reads (tmux ``-S``: ``"-200"``, ``"-"``
        for all of it, with wrapped lines joined); None: the visible screen only, as drawn.
    :param options: tmux options set on the session before the command can end (e.g.
        ``("remain-on-exit", "on")`` to read a pane whose program has exited).
    """

    def __init__(
        self,
        command: str | None,
        *,
        width: int = 120,
        height: int = 40,
        cwd: Path | None = None,
        scrollback: str | None = None,
        options: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.socket = f"otrace-test-{uuid.uuid4().hex[:12]}"
        self.scrollback = scrollback
        args = ["new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height)]
        if cwd is not None:
            args += ["-c", str(cwd)]
        if command is not None:
            args.append(command)
        for name, value in options:
            args += [";", "set-option", "-t", "t", name, value]
        self.tmux(*args)

    def tmux(self, *args: str) -> str:
        """Run a tmux command on this pane's server; its output."""
        proc = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return proc.stdout

    def type(self, text: str) -> None:
        """Type ``text`` literally."""
        self.tmux("send-keys", "-t", "t", "-l", text)

    def send(self, *keys: str) -> None:
        """Press keys by tmux name (``Enter``, ``C-c``, ``Tab`` ...)."""
        self.tmux("send-keys", "-t", "t", *keys)

    def line(self, text: str) -> None:
        """Type ``text`` and Enter."""
        self.type(text)
        self.send("Enter")

    def screen(self) -> str:
        if self.scrollback is None:
            return self.tmux("capture-pane", "-p", "-t", "t")
        return self.tmux("capture-pane", "-p", "-J", "-S", self.scrollback, "-t", "t")

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen().splitlines()]

    def last_line(self) -> str:
        """The last line that is not blank."""
        lines = [line for line in self.lines() if line]
        return lines[-1] if lines else ""

    def wait_for(self, pattern: str, what: str = "", timeout: float = 15) -> str:
        """Wait until ``pattern`` (multi-line mode) matches the screen; the screen."""
        rx = re.compile(pattern, re.M)
        seen = [""]

        def check() -> list[str]:
            seen[0] = self.screen()
            return [seen[0]] if rx.search(seen[0]) else []

        return wait_until(
            check, timeout, lambda: f"timed out waiting for {what or pattern!r}; screen:\n{seen[0]}"
        )[0]

    def wait_last_line(self, expected: str, timeout: float = 15) -> None:
        """Wait until the last line that is not blank is ``expected`` (a prompt, usually)."""
        wait_until(
            lambda: self.last_line() == expected,
            timeout,
            lambda: f"last line is {self.last_line()!r}, not {expected!r}:\n{self.screen()}",
        )

    def cursor_x(self) -> int:
        return int(self.tmux("display", "-p", "-t", "t", "#{cursor_x}").strip())

    def close(self) -> None:
        self.tmux("kill-server")
