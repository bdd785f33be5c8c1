"""otrace.install(activate_on=...): nothing until the signal, then otrace attach works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from service_helpers import child_env

from otrace.activation import signal_number
from otrace.errors import OTraceError
from tests.subprocs import run_otrace
from tests.tmux import wait_until

APP = Path(__file__).with_name("activated_app.py")
pytestmark = pytest.mark.timeout(60)


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_activate_on_signal(tmp_path, how):
    env = child_env(tmp_path)
    if how == "environment":
        env["OTRACE_ACTIVATE"] = "SIGUSR1"
    proc = subprocess.Popen(
        [sys.executable, str(APP)],
        env=env,
        cwd=str(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "READY threads=1"
        run = Path(env["XDG_RUNTIME_DIR"])
        assert not (run / "otrace").exists() or not list((run / "otrace").glob("*.sock"))
        assert _threads(proc.pid) == 1  # no thread, no socket before the signal
        os.kill(proc.pid, signal.SIGUSR1)
        wait_until(
            lambda: list((run / "otrace").glob("*.sock")) if (run / "otrace").exists() else [],
            15,
            lambda: "no socket after the signal",
        )
        out = run_otrace(env, "attach", str(proc.pid), input="pr answer\n")
        assert out.returncode == 0 and "42" in out.stdout, out.stderr
        os.kill(proc.pid, signal.SIGUSR1)  # a second signal changes nothing
        proc.terminate()
        _, err = proc.communicate(timeout=15)
        assert "activated; attach with: otrace attach" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_signal_names():
    assert signal_number("SIGUSR1") == signal_number("usr1") == signal.SIGUSR1
    with pytest.raises(OTraceError, match="unknown signal"):
        signal_number("SIGNOPE")
