"""One service per worker after ``fork_processes``: each its own socket named with its pid."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from service_helpers import ROOT, child_env  # noqa: E402

APP = Path(__file__).with_name("forked_app.py")


class Forked:
    """forked_app.py with stdin from /dev/null; the workers' pids and sockets."""

    def __init__(self, tmp_path: Path, workers: int = 4, **env: str):
        self.env = child_env(tmp_path, APP_WORKERS=str(workers), **env)
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, str(APP)],
            cwd=str(tmp_path),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.port = int(self.wait(r"^PORT (\d+)")[0][0])
            self.parent_socket = self.wait(r"^PARENT \d+ SOCKET (.+)$")[0][0]
            found = self.wait(r"^WORKER (\d+) SOCKET (.+)$", count=workers)
        except BaseException:
            self.stop()
            raise
        self.workers = {int(pid): path for pid, path in found}

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait(self, pattern: str, count: int = 1, timeout: float = 30) -> list[tuple[str, ...]]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m.groups() for m in map(rx.search, list(self.lines)) if m]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {count} lines matching {pattern!r}:\n" + "\n".join(self.lines))

    def get(self, query: str = "", timeout: float = 10) -> str:
        import urllib.request

        url = f"http://127.0.0.1:{self.port}/?{query}"
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode()

    def stop(self) -> None:
        # the whole group: workers outlive a parent that ended (they hold its stdout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def forked(tmp_path):
    app = Forked(tmp_path)
    yield app
    app.stop()


def attach(env: dict[str, str], target: str, text: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "otrace", "attach", target],
        input=text,
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
        timeout=30,
    )


def test_each_worker_has_its_own_service(forked):
    assert len(forked.workers) == 4
    for pid, path in forked.workers.items():
        assert path.endswith(f"-{pid}.sock")
        assert os.path.exists(path)
    assert os.path.exists(forked.parent_socket)  # the parent's stays, untouched
    assert forked.parent_socket not in forked.workers.values()
    # each worker answers for itself: its own pid, and it serves requests
    for pid in forked.workers:
        done = attach(forked.env, str(pid), "worker_pid\nquit\n")
        assert done.returncode == 0, done.stderr
        assert f"(pid {pid})" in done.stderr
        assert f"globals> {pid}\n" in done.stdout
    assert "ok pid=" in forked.get("n=1")


def test_a_worker_traces_on_its_own(forked):
    pid = next(iter(forked.workers))
    done = attach(forked.env, str(pid), "trace Work.step\nquit\n")
    assert done.returncode == 0, done.stderr
    others = [p for p in forked.workers if p != pid]
    done = attach(forked.env, str(others[0]), "ls /osh/traces\nquit\n")
    assert "step" not in done.stdout  # traces are per process


def test_parent_and_workers_all_listen(tmp_path):
    """Every socket (the parent's and each worker's) accepts; ``otrace ps`` lists all."""
    app = Forked(tmp_path, workers=2)
    try:
        paths = [app.parent_socket, *app.workers.values()]
        for path in paths:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(path)
        ps = subprocess.run(
            [sys.executable, "-m", "otrace", "ps"],
            capture_output=True,
            text=True,
            env=app.env,
            cwd=str(ROOT),
            timeout=30,
        )
        for pid in app.workers:
            assert str(pid) in ps.stdout
    finally:
        app.stop()
