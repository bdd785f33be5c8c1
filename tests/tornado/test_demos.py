"""The tornademos as real processes: hold on 77, browse, resume, shutdown with holds pending."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

import tornado.testing

from tests.tmux import wait_until

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = tempfile.mkdtemp(prefix="otrace-demos-")  # the demos' sockets, not the user's
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_RUNTIME_DIR": RUNTIME}


def free_port() -> int:
    sock, port = tornado.testing.bind_unused_port()
    sock.close()
    return port


def fetch(port: int, query: str, out: dict, key: str) -> None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?{query}", timeout=30) as resp:
            out[key] = resp.read().decode()
    except Exception as exc:
        out[key] = f"error {exc}"


class Demo:
    """A demo with its shell on a pipe; what it prints (stdout and stderr) is read on a thread
    into :attr:`text`, which the test waits on after each step (never for a fixed time)."""

    def __init__(self, script: str, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tornademos" / script), f"--port={port}"],
            cwd=ROOT / "tornademos",
            env=ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        fd = self.proc.stdout.fileno()
        while chunk := os.read(fd, 65536):  # prompts end without a newline
            self._chunks.append(chunk)

    @property
    def text(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    def wait(self, pattern: str, count: int = 1, timeout: float = 30) -> None:
        """Until ``pattern`` (a regex, multi-line) has been printed ``count`` times."""
        wait_until(
            lambda: len(re.findall(pattern, self.text, re.M)) >= count,
            timeout,
            lambda: f"not {count} x {pattern!r} in:\n{self.text}",
        )

    def send(self, line: str, then: str) -> None:
        """Type ``line``; wait until ``then`` (a regex) follows it."""
        before = len(self.text)
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        wait_until(
            lambda: re.search(then, self.text[before:], re.M),
            30,
            lambda: f"{line!r}: no {then!r} after it in:\n{self.text}",
        )

    def end(self, timeout: float = 15) -> str:
        """Wait for it to exit by itself; everything it printed."""
        self.proc.wait(timeout)
        self._reader.join(10)
        return self.text

    def close(self) -> None:
        """Kill it if it still runs; close its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)
        self.proc.stdin.close()
        self.proc.stdout.close()


HELD = r"(?:^|> )GetHandler\.get:hd-hold_check:\S+$"  # the announcement of a held request


def test_torna_trace_hold_resume_and_shutdown_with_pending_holds():
    port = free_port()
    demo = Demo("torna_trace.py", port)
    try:
        demo.wait(r"(?:^|> )trace_active = True$")  # its init file ran
        out: dict = {}
        held = threading.Thread(target=fetch, args=(port, "number=77", out, "held"))
        held.start()
        demo.wait(HELD)
        fetch(port, "number=4", out, "four")
        assert "The reciprocal of 4.0 is 0.25" in out["four"]
        assert held.is_alive()
        demo.send("cd ~~", r"hold_check|\.\.")  # the prompt names the context
        demo.send("pr number", r"(?:^|> )77$")
        demo.send("resume", r"Resuming")
        held.join(10)
        assert "The reciprocal of 77.0 is 0.012987" in out["held"]
        # shutdown with two requests held: they are released and the process exits
        others = [
            threading.Thread(target=fetch, args=(port, "number=77", out, f"h{i}")) for i in range(2)
        ]
        for t in others:
            t.start()
        demo.wait(HELD, 3)
        demo.send("set safe_mode False", r"(?:^|> )safe_mode = False$")
        demo.send("shutdown -y", r"Shutting down")
        for t in others:
            t.join(10)
        assert all("0.012987" in out[f"h{i}"] for i in range(2)), out
        text = demo.end()
    finally:
        demo.close()
    assert demo.proc.returncode == 0, text
    assert "hd-hold_check" in text and "> 77\n" in text and "Resuming" in text, text
    assert "Server stopped" in text


def test_hello_trace_submit_from_shell():
    port = free_port()
    demo = Demo("hello_trace.py", port)
    try:
        demo.wait(r"^Listening on ")
        demo.send("set safe_mode False", r"(?:^|> )safe_mode = False$")
        demo.send("submit(5)", r"The reciprocal of 5\.0 is 0\.2")
        demo.send("trace Receive.respond", r"> ")
        demo.send("submit(0)", r"Receive\.respond:ex-ZeroDivisionError")
        demo.send("cd ~~", r"\.\.")
        demo.send("pr self.value", r"> ")
        demo.send("set safe_mode False", r"(?:^|> )safe_mode = False$")
        demo.send("shutdown -y", r"Shutting down")
        text = demo.end()
    finally:
        demo.close()
    assert "The reciprocal of 5.0 is 0.2" in text, text
    assert "Receive.respond:ex-ZeroDivisionError" in text
    assert "Server error: ZeroDivisionError: float division by zero" in text
    assert demo.proc.returncode == 0
