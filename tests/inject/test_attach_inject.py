"""``otrace attach --inject PID``: start otrace in a plain ``python -c`` loop, then attach."""

from __future__ import annotations

import subprocess
import sys

from test_inject import ROOT, Target, pytestmark  # noqa: F401 - gdb skip, timeout

LOOP = "import time\ncounter = 0\nwhile True:\n    counter += 1\n    time.sleep(0.01)\n"


def test_attach_inject_into_a_plain_python_c_loop(tmp_path):
    t = Target([sys.executable, "-c", "print('ready', flush=True)\n" + LOOP], tmp_path)
    try:
        t.expect(r"^ready$")
        env = {"XDG_RUNTIME_DIR": str(tmp_path), "HOME": str(tmp_path), "OTRACE_HISTORY": ""}
        done = subprocess.run(
            [sys.executable, "-m", "otrace", "attach", "--inject", "--path", str(ROOT)]
            + [str(t.proc.pid)],
            input="counter > 0\nls\nquit\n",
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**__import__("os").environ, **env},
            timeout=90,
        )
        assert done.returncode == 0, done.stderr
        assert f"started in process {t.proc.pid}" in done.stderr
        assert f"Attached to python (pid {t.proc.pid})" in done.stderr
        assert "globals> True\n" in done.stdout  # a command ran in the target
        assert "counter" in done.stdout and "time" in done.stdout
        assert t.proc.poll() is None  # it runs on after the console detached
        # a pid that is no Python process: one line, status 2
        bad = subprocess.run(
            [sys.executable, "-m", "otrace", "attach", "--inject", "999999999"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
        )
        assert bad.returncode == 2 and bad.stderr.startswith("otrace inject: "), bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    finally:
        t.close()
