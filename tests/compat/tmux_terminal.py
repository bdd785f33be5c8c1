"""A tutorial demo in a real terminal: a :class:`tests.tmux.TmuxPane` read by its history.

The tutorial tests type commands with ``send-keys`` and read the pane's whole history with
``capture-pane``; they wait for output (a pattern, or the prompt coming back), never sleep
a fixed time.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.tmux import TmuxPane, wait_until

ROOT = Path(__file__).resolve().parents[2]


def demo_env(tmp: Path) -> dict[str, str]:
    """What a demo in a pane needs: this tree's otrace, no console history, and its home,
    runtime and temporary files under ``tmp``."""
    return {
        "PYTHONPATH": str(ROOT),
        "OTRACE_HISTORY": "",
        "TERM": "xterm-256color",
        "HOME": str(tmp),
        "XDG_RUNTIME_DIR": str(tmp),
        "TMPDIR": str(tmp),
    }


class TmuxTerminal(TmuxPane):
    """``argv`` running in ``cwd`` with ``env`` in a ``width`` x ``height`` tmux pane, kept
    (with its whole history) after the program ends."""

    def __init__(
        self, argv: list[str], cwd: Path, env: dict[str, str], width: int = 160, height: int = 50
    ):
        command = "cd " + shlex.quote(str(cwd)) + " && exec env "
        command += " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command += " " + " ".join(shlex.quote(a) for a in argv)
        options = (("remain-on-exit", "on"), ("history-limit", "20000"))
        super().__init__(command, width=width, height=height, scrollback="-", options=options)

    def history(self) -> list[str]:
        """Every line the pane has shown (scrollback included), trailing blanks dropped."""
        lines = self.lines()
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def wait_lines(self, pattern: str, timeout: float = 20, start: int = 0) -> list[str]:
        """Wait until a line at or after ``start`` matches ``pattern``; the history."""
        rx = re.compile(pattern)
        seen: list[str] = []

        def check() -> list[str]:
            seen[:] = self.history()
            return seen if any(rx.search(line) for line in seen[start:]) else []

        failure = f"timed out waiting for {pattern!r}; screen:\n"
        return wait_until(check, timeout, lambda: failure + "\n".join(seen[-40:]))

    def run(self, line: str, prompt: str = r"^\S*> ?$", timeout: float = 20) -> list[str]:
        """Type ``line`` + Enter at the prompt; wait for the next prompt; return what the
        command printed (the lines between its input line and the next prompt)."""
        before = len(self.history())
        self.line(line)
        rx = re.compile(prompt)
        seen: list[str] = []

        def output() -> list[str] | None:
            seen[:] = self.history()
            start = max(before - 1, 0)
            echo = next((i for i in range(start, len(seen)) if seen[i].endswith("> " + line)), None)
            if echo is None:
                return None
            tail = [i for i in range(echo + 1, len(seen)) if rx.search(seen[i])]
            return [seen[echo + 1 : tail[-1]]] if tail else None

        failure = f"no prompt after {line!r}; screen:\n"
        return wait_until(output, timeout, lambda: failure + "\n".join(seen[-40:]))[0]
