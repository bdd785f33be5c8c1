"""otrace.install(activate_on=...): nothing until the signal, then otrace attach works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from service_helpers import ROOT, attach_cmd, child_env

from otrace.activation import signal_number
from otrace.errors import OTraceError

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
        deadline = time.monotonic() + 15
        sockets: list = []
        while not sockets and time.monotonic() < deadline:
            sockets = list((run / "otrace").glob("*.sock")) if (run / "otrace").exists() else []
            time.sleep(0.05)
        assert sockets, "no socket after the signal"
        out = subprocess.run(
            attach_cmd(str(proc.pid)),
            input="pr answer\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=str(ROOT),
            timeout=30,
        )
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
