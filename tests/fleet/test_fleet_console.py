"""``otrace attach --all PROGRAM`` in a real terminal (tmux) over ``fork_processes(4)``."""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
import threading

import pytest
from test_fork_service import Forked

from otrace.service import paths as _paths  # noqa: F401 - the worktree's otrace
from tests.subprocs import ROOT, http_get
from tests.tmux import TmuxPane

pytestmark = pytest.mark.timeout(180)


class FleetConsole(TmuxPane):
    """``python -m otrace attach --all forked_app`` typed into a shell in a private tmux
    server, 160x50."""

    def __init__(self, app: Forked, program: str = "forked_app"):
        env = {k: app.env[k] for k in ("PYTHONPATH", "XDG_RUNTIME_DIR", "HOME", "TERM")}
        env["OTRACE_HISTORY"] = ""
        command = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command += f" {shlex.quote(sys.executable)} -m otrace attach --all {program}"
        command += "; echo EXIT-STATUS-$?; sleep 30"
        super().__init__(None, width=160, height=50, cwd=ROOT, scrollback="-2000")
        self.line(command)

    def wait_for(self, pattern: str, what: str = "", timeout: float = 30) -> str:
        return super().wait_for(pattern, what, timeout)

    def run(self, text: str, until: str, timeout: float = 30) -> str:
        """Type a command on a cleared screen; the screen once ``until`` shows after it."""
        self.tmux("clear-history", "-t", "t")
        self.send("C-l")
        self.line(text)
        return self.wait_for(until, timeout=timeout)


@pytest.fixture
def fleet(tmp_path):
    app = Forked(tmp_path, workers=4)
    console = FleetConsole(app)
    try:
        console.wait_for(r"fleet\[5\] globals> *$")
        yield app, console
    finally:
        console.close()
        app.stop()


def test_fleet_console_over_four_workers(fleet):
    app, console = fleet
    workers = sorted(app.workers)
    screen = console.screen()
    assert "Attached to 5 processes of forked_app" in screen  # 4 workers and their parent

    # a broadcast command: once, for all
    screen = console.run("trace -c call Work.step", r"Tracing -c call Work.step")
    assert "[all 5 workers] Tracing -c call Work.step" in screen

    # 100 requests, spread over the workers by the kernel
    served: dict[str, int] = {}
    for _ in range(100):
        pid = re.search(r"pid=(\d+)", http_get(app.port, "n=1", timeout=30)).group(1)
        served[pid] = served.get(pid, 0) + 1
    assert set(served) <= {str(p) for p in workers}

    # /osh/recent of the fleet: the contexts of every worker that served, pid in the name
    screen = console.run("ls /osh/recent", r"(?s)/osh/recent/\S+@\d+\n.*fleet\[5\] globals> *$")
    listed = set(re.findall(r"/osh/recent/traces/Work\.step/tr-call/\S+@(\d+)", screen))
    assert listed == set(served), (served, screen)

    # browse one worker as if attached to it alone
    pid = workers[0]
    console.run(f"cd /osh/workers/{pid}/globals", rf"\[{pid}\] globals> *$")
    screen = console.run("worker_pid", rf"^{pid}$")
    console.run("cd /osh/workers", r"fleet\[5\] globals> *$")

    # a hold by condition, in whichever worker gets the request; resume reaches it
    console.line("set safe_mode False")
    console.wait_for(r"\[all 5 workers\] safe_mode = False")
    screen = console.run(
        "hold -c 'request.uri == \"/?number=77\"'", r"(?s)hold -c.*fleet\[5\] globals> *$"
    )
    answer: list[str] = []

    def request() -> None:
        try:
            answer.append(http_get(app.port, "number=77", timeout=30))
        except OSError as exc:
            answer.append(f"failed: {exc}")

    waiter = threading.Thread(target=request, daemon=True)
    waiter.start()
    screen = console.wait_for(r"^\[(\d+)\] Handler\.get:hd-", timeout=30)
    holder, hold_id = re.search(r"^\[(\d+)\] (Handler\.get:hd-\S+)", screen, re.M).groups()
    assert int(holder) in workers
    assert waiter.is_alive()  # held
    screen = console.run("ls /osh/recent/holds", rf"@{holder}$")
    found = re.search(rf"(/osh/recent/holds/\S+)@{holder}$", screen, re.M)
    assert found, screen
    held = found.group(1)
    assert held.endswith(hold_id.rsplit(":", 1)[-1])
    console.line(f"resume {hold_id}@{holder}")
    waiter.join(30)
    screen = console.screen()
    assert answer, screen
    assert f"pid={holder}" in answer[0], (answer, screen)
    assert f"pid={holder}" in answer[0] and "number=77" in answer[0]

    # SIGKILL one worker: it leaves, the others answer; the parent forks a replacement,
    # which joins the fleet
    victim = next(p for p in workers if str(p) != holder)
    os.kill(victim, signal.SIGKILL)
    console.wait_for(rf"\*\*\* worker {victim} left the fleet")
    screen = console.wait_for(r"\*\*\* worker (\d+) joined the fleet")
    newcomer = int(re.search(r"\*\*\* worker (\d+) joined the fleet", screen).group(1))
    assert newcomer not in workers
    screen = console.run("worker_pid", rf"(?s)\[worker {newcomer}\] {newcomer}.*globals> *$")
    for pid in workers:
        if pid != victim:
            assert f"[worker {pid}] {pid}" in screen
    assert f"[worker {victim}]" not in screen
    console.run("untrace Work.step", r"\[all 5 workers\] untraced Work.step")
    console.line("quit")
    console.wait_for(r"EXIT-STATUS-0")
