"""Helpers for the service tests: a served program as a subprocess with no terminal, and
consoles attached to it with ``python -m otrace attach`` (piped, or in tmux)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
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
    """served_app.py with stdin from /dev/null; its output is collected in ``lines``."""

    def __init__(self, tmp_path: Path, app: Path = APP, **env: str):
        self.tmp_path = tmp_path
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
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.port = int(self.wait_line(r"^PORT (\d+)").group(1))
            self.socket = self.wait_line(r"^SOCKET (.+)$").group(1)
        except BaseException:
            self.stop()
            raise
        self.pid = self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, pattern: str, timeout: float = 15) -> re.Match:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = rx.search(line)
                if m:
                    return m
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no line matching {pattern!r}; output:\n{self.output()}")

    def get(self, query: str = "", timeout: float = 10) -> str:
        url = f"http://127.0.0.1:{self.port}/?{query}"
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode()

    def timed_get(self, query: str = "") -> float:
        start = time.perf_counter()
        self.get(query)
        return time.perf_counter() - start

    def stop(self) -> None:
        if self.proc.poll() is None:
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


class Attached:
    """``otrace attach`` in a private tmux server (a real terminal), 120x40."""

    def __init__(self, server: Server, target: str = ""):
        self.socket = f"otrace-svc-{uuid.uuid4().hex[:12]}"
        env = {k: server.env[k] for k in ("PYTHONPATH", "XDG_RUNTIME_DIR", "HOME", "TERM")}
        env["OTRACE_HISTORY"] = ""
        command = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command += " " + " ".join(shlex.quote(a) for a in attach_cmd(target or str(server.pid)))
        command += "; echo EXIT-STATUS-$?; sleep 30"
        self.tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "40", command)
        self.wait_for(r"globals> *$", what="the first prompt")

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
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", "t")

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
