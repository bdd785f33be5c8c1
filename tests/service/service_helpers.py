"""Helpers for the service tests: a served program as a subprocess with no terminal, and
consoles attached to it with ``python -m otrace attach`` (piped, or in tmux)."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

from tests.subprocs import ROOT, Program, child_env, http_get, run_otrace
from tests.tmux import TmuxPane, needs_tmux

__all__ = [
    "ROOT",
    "Attached",
    "Server",
    "attach_cmd",
    "attach_piped",
    "attach_popen",
    "child_env",
    "needs_tmux",
]

APP = Path(__file__).with_name("served_app.py")


class Server(Program):
    """served_app.py (or ``app``) with stdin from /dev/null; its HTTP port and service socket."""

    def __init__(self, tmp_path: Path, app: Path = APP, **env: str):
        self.tmp_path = tmp_path
        super().__init__([sys.executable, str(app)], tmp_path, child_env(tmp_path, **env))
        try:
            self.port = int(self.wait_line(r"^PORT (\d+)").group(1))
            self.socket = self.wait_line(r"^SOCKET (.+)$").group(1)
        except BaseException:
            self.stop()
            raise

    def get(self, query: str = "", timeout: float = 10) -> str:
        return http_get(self.port, query, timeout)

    def timed_get(self, query: str = "") -> float:
        start = time.perf_counter()
        self.get(query)
        return time.perf_counter() - start


def attach_cmd(target: str) -> list[str]:
    return [sys.executable, "-m", "otrace", "attach", target]


def attach_piped(server: Server, text: str, target: str = "", timeout: float = 30):
    """Run ``otrace attach`` with ``text`` as its input; (returncode, stdout, stderr)."""
    proc = run_otrace(server.env, "attach", target or str(server.pid), input=text, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def attach_popen(server: Server) -> subprocess.Popen[str]:
    """``otrace attach`` with pipes to write its input and read its output as it goes."""
    return subprocess.Popen(
        attach_cmd(str(server.pid)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=server.env,
        cwd=str(ROOT),
    )


class Attached(TmuxPane):
    """``otrace attach`` in a private tmux server (a real terminal), 120x40."""

    def __init__(self, server: Server, target: str = ""):
        env = {k: server.env[k] for k in ("PYTHONPATH", "XDG_RUNTIME_DIR", "HOME", "TERM")}
        env["OTRACE_HISTORY"] = ""
        command = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command += " " + " ".join(shlex.quote(a) for a in attach_cmd(target or str(server.pid)))
        command += "; echo EXIT-STATUS-$?; sleep 30"  # keeps the pane (and its status) to read
        super().__init__(command, scrollback="-200")
        self.wait_for(r"globals> *$", what="the first prompt")

    def wait_prompt(self, prompt: str = "globals>", timeout: float = 15) -> None:
        self.wait_last_line(prompt, timeout)
