"""``otrace attach --inject PID`` on a Tornado server that never imported otrace, under a
steady ``wrk`` load, in a real terminal (tmux): the console lists, traces and detaches, and
not one request fails."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
from test_inject import HERE, ROOT, Target

from tests.compat.tmux_terminal import TmuxTerminal

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb not installed (.ci/setup)"),
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (.ci/setup)"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed (.ci/setup)"),
]

# says when the first answer came, so the test waits for the load instead of sleeping
FIRST_ANSWER = """
local said = false
response = function(status, headers, body)
  if not said then
    said = true
    io.write("FIRST " .. status .. "\\n")
    io.flush()
  end
end
"""


def test_attach_inject_into_tornado_under_load_fails_no_request(tmp_path):
    target = Target([sys.executable, str(HERE / "target_tornado.py")], tmp_path)
    load = None
    term = None
    try:
        port = int(target.expect(r"^port (\d+) otrace-imported=False$").group(1))
        script = tmp_path / "first.lua"
        script.write_text(FIRST_ANSWER)
        load = subprocess.Popen(
            ["wrk", "-t1", "-c4", "-d600s", "--timeout", "60s", "-s", str(script)]
            + [f"http://127.0.0.1:{port}/"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert load.stdout is not None
        head = [load.stdout.readline() for _ in range(3)]  # until wrk's first answer
        assert head[-1].startswith("FIRST 200"), head

        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "XDG_RUNTIME_DIR": str(tmp_path),
            "TERM": "xterm-256color",
            "OTRACE_HISTORY": "",
        }
        command = f"{sys.executable} -m otrace attach --inject --path {ROOT} {target.proc.pid}"
        term = TmuxTerminal(["sh", "-c", f"{command}; echo EXIT-STATUS-$?"], ROOT, env)
        term.wait_for(rf"Attached to \S+ \(pid {target.proc.pid}\)", timeout=90)
        term.wait_for(r"^globals> ?$")

        # the console reaches into the program: its globals, then a trace that records
        listed = "\n".join(term.run("ls", prompt=r"^globals> ?$"))
        assert "Hello" in listed and "tornado" in listed, listed
        out = term.run("trace -c call -n +3 Hello.get", prompt=r"^globals> ?$")
        assert any("Tracing" in line for line in out), out
        term.wait_for(r"Hello\.get:tr-call:\S+")  # announced: the load makes the calls
        recorded = term.run("ls /osh/recent/traces/Hello.get/*/*", prompt=r"^globals> ?$")
        paths = re.findall(r"/osh/recent/traces/Hello\.get/tr-call/\S+", " ".join(recorded))
        assert len(paths) == 3, recorded  # -n +3: three calls, then the trace stops
        term.type("quit")
        term.send("Enter")
        term.wait_for(r"^EXIT-STATUS-0$", timeout=30)
        assert target.proc.poll() is None  # the program runs on

        load.send_signal(signal.SIGINT)  # wrk prints its summary and ends
        report, _ = load.communicate(timeout=60)
        load = None
        served = re.search(r"(\d+) requests in", report)
        assert served and int(served.group(1)) > 100, report
        assert "Non-2xx" not in report and "Socket errors" not in report, report
    finally:
        if term is not None:
            term.close()
        if load is not None:
            load.kill()
            load.communicate(timeout=30)
        target.close()
