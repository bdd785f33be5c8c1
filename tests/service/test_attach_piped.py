"""otrace attach with piped input against a real served program (no terminal anywhere)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from service_helpers import Server, attach_cmd, attach_piped, attach_popen, child_env

from tests.subprocs import read_line, run_otrace
from tests.tmux import wait_until

pytestmark = pytest.mark.timeout(90)


def test_no_terminal_the_program_runs_and_says_how_to_attach(server):
    line = server.wait_line(r"attach with: otrace attach (\d+)")
    assert int(line.group(1)) == server.pid
    assert server.get("n=1").startswith("ok")
    assert server.proc.poll() is None
    assert oct(os.stat(server.socket).st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.dirname(server.socket)).st_mode & 0o777) == "0o700"


def test_attach_runs_commands_and_quit_detaches(server):
    rc, out, err = attach_piped(server, "pr 6 * 7\ncd Work\npwd\nquit\n")
    assert rc == 0, err
    assert "42" in out and "/osh/globals/Work" in out
    assert "Attached to served_app" in err and "Detaching console" in err
    assert server.get("n=2") == "ok number= n=2\n"  # the program runs on


def test_end_of_input_detaches_too(server):
    rc, out, err = attach_piped(server, "pr 1 + 1\n")
    assert rc == 0 and "2" in out
    assert server.get().startswith("ok")


def test_ps_lists_the_program(server):
    proc = run_otrace(server.env, "ps", timeout=20)
    assert proc.returncode == 0
    row = next(line for line in proc.stdout.splitlines() if line.startswith(str(server.pid)))
    assert "served_app" in row and server.socket in row


def test_attach_by_name_and_socket(server):
    for target in ("served_app", server.socket):
        rc, out, _ = attach_piped(server, "pr 'x' * 3\n", target=target)
        assert rc == 0 and "xxx" in out


def test_system_exit_from_a_repr_is_one_line(server):
    rc, out, err = attach_piped(server, "pr shy\nls -l\npr 5 + 5\n")
    assert rc == 0
    # safe mode never calls the program's repr (it shows <module.Shy object at 0x...>);
    # unsafe mode shows the SystemExit it raised as one line
    assert "SystemExit" in err or "Shy object at 0x" in out
    assert "10" in out  # the session goes on
    assert server.get().startswith("ok") and server.proc.poll() is None


def test_refusals_are_one_line_and_nonzero(server, tmp_path):
    rc, _, err = attach_piped(server, "", target="999999")
    assert rc == 1 and err.strip().count("\n") == 0 and "no process 999999" in err
    plain = tmp_path / "plain.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(plain))
    listener.listen(1)
    try:
        rc, _, err = attach_piped(server, "", target=str(plain), timeout=30)
        assert rc == 1 and "not an otrace service" in err, err
    finally:
        listener.close()


def test_shutdown_asks_and_is_refused_in_safe_mode(server):
    rc, out, err = attach_piped(server, "shutdown -y\n")
    assert "not permitted in safe mode" in err
    rc, out, err = attach_piped(server, "set safe_mode False\nshutdown\nn\n")
    assert "Stop the program? [y/N]" in out and "Not confirmed" in err
    assert server.get().startswith("ok")
    rc, out, err = attach_piped(server, "shutdown\ny\n")
    assert "Shutting down the program" in err
    server.wait_line(r"^Server stopped")
    assert server.proc.wait(10) == 0


def test_sigkill_mid_command_leaves_the_service_usable(server):
    proc = attach_popen(server)
    running = server.tmp_path / "running"
    proc.stdin.write(
        f"set safe_mode False\n!import pathlib, time; pathlib.Path({str(running)!r}).touch(); time.sleep(3)\n"
    )
    proc.stdin.flush()
    wait_until(running.exists, 15, lambda: "the command did not start")  # in the session's worker
    proc.kill()
    proc.communicate(timeout=10)
    assert server.get().startswith("ok")
    rc, out, err = attach_piped(server, "pr 2 ** 10\n")
    assert rc == 0 and "1024" in out, (rc, out, err, server.output())


def test_garbage_and_huge_lines_end_only_that_session(server):
    for payload in (b"this is not json\n", b'{"t": "hello", "v": 1}' + b"x" * (3 << 20)):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(server.socket)
        try:
            s.sendall(payload)
        except OSError:
            pass  # the service hung up on us mid-line
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except OSError:
            pass
        s.close()
        assert b"welcome" not in data
    assert server.get().startswith("ok")
    rc, out, _ = attach_piped(server, "pr 3 * 3\n")
    assert rc == 0 and "9" in out


def test_audit_log_file_and_osh_audit(server):
    attach_piped(server, "cd Work\npr nosuchname\n")
    rc, out, _ = attach_piped(server, "cd /osh/audit\nls\npr _otrace_value[-1]\n")
    audit_file = server.socket[: -len(".sock")] + ".audit.log"
    text = Path(audit_file).read_text()
    assert f"uid={os.getuid()}" in text
    assert " ok  cd Work" in text and " err pr nosuchname" in text
    assert oct(os.stat(audit_file).st_mode & 0o777) == "0o600"
    assert "cd /osh/audit" in text
    assert "audit> 0 1 2" in out  # the entries, newest last
    assert "ok  ls" in out  # the newest entry: this console's own ls


def test_another_uid_is_refused_and_audited(tmp_path):
    if os.getuid() != 0 or not _which("setpriv"):
        pytest.skip("needs root and setpriv to run a client as nobody")
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    probe = subprocess.run(
        [*as_nobody, sys.executable, "-c", "import otrace"],
        cwd="/",
        env=child_env(tmp_path),
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        pytest.skip(f"this interpreter does not run as nobody: {probe.stderr[-200:]!r}")
    # a directory nobody can reach (pytest's tmp_path is under a 0700 directory)
    shared = Path(tempfile.mkdtemp(prefix="otrace-peer-"))
    os.chmod(shared, 0o755)
    path = shared / "app.sock"
    srv = Server(tmp_path, APP_LISTEN=str(path))
    try:
        proc = subprocess.run(
            [*as_nobody, *attach_cmd(str(path))],
            capture_output=True,
            text=True,
            env=srv.env,
            cwd="/",
            timeout=30,
        )
        assert proc.returncode == 1  # the socket is 0600: the kernel already says no
        assert f"permission denied: {path} (owned by uid 0)" in proc.stderr, proc.stderr
        os.chmod(path, 0o666)  # even with the file mode opened up, the peer check refuses
        proc = subprocess.run(
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                *attach_cmd(str(path)),
            ],
            capture_output=True,
            text=True,
            env=srv.env,
            cwd="/",
            timeout=30,
        )
        assert proc.returncode == 1
        assert "refused: uid 65534 may not attach" in proc.stderr, proc.stderr
        audit = (shared / "app.audit.log").read_text()
        assert "uid=65534" in audit and "ref" in audit
        assert srv.get().startswith("ok")
    finally:
        srv.stop()
        shutil.rmtree(shared, ignore_errors=True)


def _which(name: str) -> bool:
    return shutil.which(name) is not None


def test_stopped_client_does_not_slow_the_server(server):
    """A console stopped with SIGSTOP while 10,000 announcements are made: the traced
    requests take about as long as with no console, and the console hears it missed some."""
    rc, out, err = attach_piped(server, "trace -c call Work.step\n")
    assert "Tracing" in out + err
    server.get("n=10")  # warm up
    alone = min(server.timed_get("n=2000") for _ in range(3))
    proc = attach_popen(server)
    try:
        proc.stdin.write("pr 'attached'\n")
        proc.stdin.flush()
        seen = [read_line(proc.stdout) for _ in range(2)]  # the banner, then the answer
        assert seen[-1].rstrip().endswith("attached"), seen  # attached: announcements reach it
        os.kill(proc.pid, signal.SIGSTOP)
        stopped = [server.timed_get("n=2000") for _ in range(5)]  # 10,000 announcements
        assert min(stopped) < alone * 3 + 0.2, (alone, stopped)
        quick = server.timed_get("")
        assert quick < 1.0
        os.kill(proc.pid, signal.SIGCONT)
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        _, err_text = proc.communicate(timeout=30)
        assert "dropped" in err_text
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()


def test_edit_uses_the_operators_editor(server, tmp_path):
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/i + 1/i + 100/' \"$1\"\n")
    editor.chmod(0o755)
    env = dict(server.env, EDITOR=str(editor), VISUAL="")
    proc = run_otrace(
        env,
        "attach",
        str(server.pid),
        input="set safe_mode False\nedit Work.step\npr Work.step(1)\n",
    )
    assert "Patched Work.step" in proc.stdout, proc.stderr
    assert "101" in proc.stdout
    assert server.get("n=1").startswith("ok")
