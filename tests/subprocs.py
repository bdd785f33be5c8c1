"""Programs under test as subprocesses, and the ``otrace`` command run from this tree.

A :class:`Program` reads its child's output on a thread into ``lines``; tests wait for the
lines they expect (:meth:`Program.wait_lines`), never for a fixed time.  :func:`child_env`
points a child at this worktree and gives it private runtime, home and socket directories,
so tests running at the same time never meet.

Used by tests/service and tests/fleet.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from tests.tmux import wait_until

ROOT = Path(__file__).resolve().parents[1]


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a child that imports this tree, with its own XDG_RUNTIME_DIR and
    HOME under ``tmp_path`` (so its service socket is private) and no console history."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        XDG_RUNTIME_DIR=str(run),
        HOME=str(tmp_path),
        OTRACE_HISTORY="",
        TERM="xterm-256color",
    )
    env.update(extra)
    return env


def run_otrace(
    env: dict[str, str], *args: str, input: str = "", timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """``python -m otrace ARGS`` (this tree's) with ``input`` as its stdin; its output."""
    return subprocess.run(
        [sys.executable, "-m", "otrace", *args],
        input=input,
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
        timeout=timeout,
    )


def http_get(port: int, query: str = "", timeout: float = 10) -> str:
    """The body of ``GET http://127.0.0.1:PORT/?QUERY``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/?{query}", timeout=timeout) as resp:
        return resp.read().decode()


class Program:
    """``argv`` with stdin from /dev/null; stdout and stderr, line by line, in ``lines``.

    :param group: start it in a session of its own and stop the whole process group (a
        forking server's workers outlive their parent and hold its stdout).
    """

    def __init__(
        self, argv: Sequence[str], cwd: Path, env: dict[str, str], *, group: bool = False
    ) -> None:
        self.env = env
        self.group = group
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            list(argv),
            cwd=str(cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=group,
        )
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_lines(self, pattern: str, count: int = 1, timeout: float = 15) -> list[re.Match]:
        """Wait for ``count`` lines matching ``pattern``; their matches.  Fails at once when the
        program has ended and all its output is read."""
        rx = re.compile(pattern)

        def check() -> list[re.Match]:
            ended = self.proc.poll() is not None and not self._reader.is_alive()
            found = [m for m in map(rx.search, list(self.lines)) if m]
            if len(found) < count and ended:
                raise AssertionError(f"ended before {pattern!r}; output:\n{self.output()}")
            return found if len(found) >= count else []

        return wait_until(
            check, timeout, lambda: f"no {count} lines matching {pattern!r}:\n{self.output()}"
        )

    def wait_line(self, pattern: str, timeout: float = 15) -> re.Match:
        return self.wait_lines(pattern, 1, timeout)[0]

    def stop(self) -> None:
        """Kill it (and with ``group``, every process of its group); close its pipe."""
        if self.group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        elif self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def read_line(stream: IO[str], timeout: float = 15) -> str:
    """The next line of ``stream`` (a child's pipe), waiting at most ``timeout`` seconds."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box:
        raise AssertionError(f"no line within {timeout} s")
    return box[0]
