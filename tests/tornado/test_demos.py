"""The tornademos as real processes: hold on 77, browse, resume, shutdown with holds pending."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import tornado.testing

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


def start(script: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tornademos" / script), f"--port={port}"],
        cwd=ROOT / "tornademos",
        env=ENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = proc.stdout.readline()
    assert "Listening on" in line, line
    return proc


def send(proc: subprocess.Popen, line: str, delay: float = 0.5) -> None:
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    time.sleep(delay)


def test_torna_trace_hold_resume_and_shutdown_with_pending_holds():
    port = free_port()
    proc = start("torna_trace.py", port)
    try:
        time.sleep(0.5)  # init file: set trace_active True
        out: dict = {}
        held = threading.Thread(target=fetch, args=(port, "number=77", out, "held"))
        held.start()
        time.sleep(0.5)
        fetch(port, "number=4", out, "four")
        assert "The reciprocal of 4.0 is 0.25" in out["four"]
        assert held.is_alive()
        send(proc, "cd ~~")
        send(proc, "pr number")
        send(proc, "resume")
        held.join(10)
        assert "The reciprocal of 77.0 is 0.012987" in out["held"]
        # shutdown with two requests held: they are released and the process exits
        others = [
            threading.Thread(target=fetch, args=(port, "number=77", out, f"h{i}")) for i in range(2)
        ]
        for t in others:
            t.start()
        time.sleep(0.7)
        send(proc, "set safe_mode False")
        send(proc, "shutdown -y")
        for t in others:
            t.join(10)
        assert all("0.012987" in out[f"h{i}"] for i in range(2)), out
        text, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "hd-hold_check" in text and "> 77\n" in text and "Resuming" in text, text
    assert "Server stopped" in text


def test_hello_trace_submit_from_shell():
    port = free_port()
    proc = start("hello_trace.py", port)
    try:
        send(proc, "set safe_mode False")
        send(proc, "submit(5)")
        send(proc, "trace Receive.respond")
        send(proc, "submit(0)")
        send(proc, "cd ~~")
        send(proc, "pr self.value")
        send(proc, "set safe_mode False")
        send(proc, "shutdown -y")
        text, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "The reciprocal of 5.0 is 0.2" in text, text
    assert "Receive.respond:ex-ZeroDivisionError" in text
    assert "Server error: ZeroDivisionError: float division by zero" in text
    assert proc.returncode == 0
