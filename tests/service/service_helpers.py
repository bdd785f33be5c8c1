"""Helpers for the service tests: a served program as a subprocess with no terminal, and
consoles attached to it with ``python -m otrace attach`` (piped, or in tmux)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
APP = Path(__file__).with_name("served_app.py")


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
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


class Server:
    """served_app.py (or ``app``) with stdin from /dev/null; its output is collected in
    ``lines``.  ``group``: in a session of its own, stopped as a whole (forked workers)."""

    def __init__(self, tmp_path: Path, app: Path = APP, *, group: bool = False, **env: str):
        self.tmp_path = tmp_path
        self.group = group
        self.env = child_env(tmp_path, **env)
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, str(app)],
            cwd=str(tmp_path),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=group,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.started()
        except BaseException:
            self.stop()
            raise
        self.pid = self.proc.pid

    def started(self) -> None:
        """Wait for what the program prints once it serves."""
        self.port = int(self.wait_line(r"^PORT (\d+)").group(1))
        self.socket = self.wait_line(r"^SOCKET (.+)$").group(1)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_lines(self, pattern: str, count: int = 1, timeout: float = 15) -> list[re.Match]:
        """The first ``count`` lines matching ``pattern``, once there are that many."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in map(rx.search, list(self.lines)) if m]
            if len(found) >= count:
                return found[:count]
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no {count} line(s) matching {pattern!r}; output:\n{self.output()}")

    def wait_line(self, pattern: str, timeout: float = 15) -> re.Match:
        return self.wait_lines(pattern, 1, timeout)[0]

    def get(self, query: str = "", timeout: float = 10) -> str:
        url = f"http://127.0.0.1:{self.port}/?{query}"
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode()

    def timed_get(self, query: str = "") -> float:
        start = time.perf_counter()
        self.get(query)
        return time.perf_counter() - start

    def stop(self) -> None:
        if self.group:  # the whole group: workers outlive a parent that ended
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        elif self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def attach_cmd(target: str) -> list[str]:
    return [sys.executable, "-m", "otrace", "attach", target]


def attach_piped(server: Server, text: str, target: str = "", timeout: float = 30):
    """Run ``otrace attach`` with ``text`` as its input; (returncode, stdout, stderr)."""
    proc = subprocess.run(
        attach_cmd(target or str(server.pid)),
        input=text,
        capture_output=True,
        text=True,
        env=server.env,
        cwd=str(ROOT),
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr


def in_shell(env: dict[str, str], argv: list[str]) -> str:
    """A shell command running ``argv`` with ``env`` that shows its exit status after."""
    command = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    command += " " + " ".join(shlex.quote(a) for a in argv)
    return command + "; echo EXIT-STATUS-$?; sleep 30"


class TmuxConsole:
    """A shell ``command`` in a private tmux server (a real terminal)."""

    def __init__(
        self,
        command: str,
        width: int = 120,
        height: int = 40,
        history: int = 200,
        cwd: Path | None = None,
    ):
        self.socket = f"otrace-svc-{uuid.uuid4().hex[:12]}"
        self.history = history  # lines of scrollback that screen() shows
        size = ["-x", str(width), "-y", str(height)]
        where = ["-c", str(cwd)] if cwd is not None else []
        self.tmux("new-session", "-d", "-s", "t", *size, *where, command)

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return proc.stdout

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "t", "-l", text)

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def line(self, text: str) -> None:
        self.type(text)
        self.send("Enter")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", f"-{self.history}", "-t", "t")

    def last_line(self) -> str:
        lines = [ln.rstrip() for ln in self.screen().splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    def wait_for(self, pattern: str, what: str = "", timeout: float = 15) -> str:
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if rx.search(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or pattern!r}:\n{screen}")
            time.sleep(0.05)

    def wait_prompt(self, prompt: str = "globals>", timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while self.last_line() != prompt:
            if time.monotonic() > deadline:
                raise AssertionError(f"last line is not {prompt!r}:\n{self.screen()}")
            time.sleep(0.05)

    def close(self) -> None:
        self.tmux("kill-server")


class Attached(TmuxConsole):
    """``otrace attach`` in a private tmux server (a real terminal), 120x40."""

    def __init__(self, server: Server, target: str = ""):
        env = {k: server.env[k] for k in ("PYTHONPATH", "XDG_RUNTIME_DIR", "HOME", "TERM")}
        env["OTRACE_HISTORY"] = ""
        super().__init__(in_shell(env, attach_cmd(target or str(server.pid))))
        self.wait_for(r"globals> *$", what="the first prompt")
