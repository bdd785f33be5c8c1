"""One service per worker after ``fork_processes``: each its own socket named with its pid."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.subprocs import Program, child_env, http_get, run_otrace

APP = Path(__file__).with_name("forked_app.py")


class Forked(Program):
    """forked_app.py with stdin from /dev/null; the workers' pids and sockets."""

    def __init__(self, tmp_path: Path, workers: int = 4, **env: str):
        env_ = child_env(tmp_path, APP_WORKERS=str(workers), **env)
        super().__init__([sys.executable, str(APP)], tmp_path, env_, group=True)
        try:
            self.port = int(self.wait_line(r"^PORT (\d+)", timeout=30).group(1))
            self.parent_socket = self.wait_line(r"^PARENT \d+ SOCKET (.+)$", timeout=30).group(1)
            found = self.wait_lines(r"^WORKER (\d+) SOCKET (.+)$", count=workers, timeout=30)
        except BaseException:
            self.stop()
            raise
        self.workers = {int(m.group(1)): m.group(2) for m in found}

    def get(self, query: str = "", timeout: float = 10) -> str:
        return http_get(self.port, query, timeout)


@pytest.fixture
def forked(tmp_path):
    app = Forked(tmp_path)
    yield app
    app.stop()


def attach(env: dict[str, str], target: str, text: str) -> subprocess.CompletedProcess:
    return run_otrace(env, "attach", target, input=text)


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
        ps = run_otrace(app.env, "ps")
        for pid in app.workers:
            assert str(pid) in ps.stdout
    finally:
        app.stop()
