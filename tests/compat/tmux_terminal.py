"""A program in a real terminal: a tmux pane on a private tmux server (``tmux -L``).

The tutorial tests type commands with ``send-keys`` and read the pane's whole history with
``capture-pane``; they wait for output (a pattern, or the prompt coming back), never sleep
a fixed time.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
import uuid
from pathlib import Path


class TmuxTerminal:
    """``command`` (argv) running in a ``width`` x ``height`` tmux pane."""

    def __init__(
        self, argv: list[str], cwd: Path, env: dict[str, str], width: int = 160, height: int = 50
    ):
        self.socket = f"otrace-compat-{uuid.uuid4().hex[:12]}"
        command = "cd " + shlex.quote(str(cwd)) + " && exec env "
        command += " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command += " " + " ".join(shlex.quote(a) for a in argv)
        self.tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), command)
        self.tmux("set-option", "-t", "t", "remain-on-exit", "on")
        self.tmux("set-option", "-t", "t", "history-limit", "20000")
        self.mark = 0  # lines of history already consumed by `run`

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return proc.stdout

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "t", "-l", text)

    def key(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def history(self) -> list[str]:
        """Every line the pane has shown (scrollback included), trailing blanks dropped."""
        text = self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "t")
        lines = [line.rstrip() for line in text.splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def wait_for(self, pattern: str, timeout: float = 20, start: int = 0) -> list[str]:
        """Wait until a line at or after ``start`` matches ``pattern``; the history."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            lines = self.history()
            if any(rx.search(line) for line in lines[start:]):
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {pattern!r}; screen:\n" + "\n".join(lines[-40:])
                )
            time.sleep(0.05)

    def run(self, line: str, prompt: str = r"^\S*> ?$", timeout: float = 20) -> list[str]:
        """Type ``line`` + Enter at the prompt; wait for the next prompt; return what the
        command printed (the lines between its input line and the next prompt)."""
        before = len(self.history())
        self.type(line)
        self.key("Enter")
        rx = re.compile(prompt)
        deadline = time.monotonic() + timeout
        while True:
            lines = self.history()
            start = max(before - 1, 0)
            echo = next(
                (i for i in range(start, len(lines)) if lines[i].endswith("> " + line)), None
            )
            if echo is not None:
                tail = [i for i in range(echo + 1, len(lines)) if rx.search(lines[i])]
                if tail:
                    return lines[echo + 1 : tail[-1]]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no prompt after {line!r}; screen:\n" + "\n".join(lines[-40:])
                )
            time.sleep(0.05)

    def close(self) -> None:
        self.tmux("kill-server")
