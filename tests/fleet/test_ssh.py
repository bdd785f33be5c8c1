"""``otrace attach ssh://root@127.0.0.1:PORT/PROGRAM`` through a real sshd on loopback."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.service.service_helpers import Server
from tests.subprocs import ROOT

SSHD = "/usr/sbin/sshd"
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        not os.path.exists(SSHD) or shutil.which("ssh") is None or os.geteuid() != 0,
        reason="needs Debian's openssh-server and root (.ci/setup)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ssh_env(server: Server, key: Path, *options: str) -> dict[str, str]:
    """The environment of a local ``otrace`` that reaches ``server`` through the sshd: ssh
    with the test's key and no host key checks, and the far side's ``otrace`` run with the
    server's own environment (so it finds the server's socket)."""
    far = " ".join(
        f"{k}={shlex.quote(server.env[k])}" for k in ("PYTHONPATH", "XDG_RUNTIME_DIR", "HOME")
    )
    env = dict(server.env)
    env["OTRACE_SSH"] = " ".join(
        [
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            *options,
            f"-i {key}",
        ]
    )
    env["OTRACE_REMOTE"] = f"env {far} {shlex.quote(sys.executable)} -m otrace"
    return env


@pytest.fixture
def sshd(tmp_path):
    d = tmp_path / "ssh"
    d.mkdir(mode=0o700)
    for name in ("host", "client"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
            check=True,
            timeout=30,
        )
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    port = free_port()
    (d / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1:{port}\n"
        f"HostKey {d / 'host'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\n"
    )
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # "Server listening on 127.0.0.1 port N."
        assert f"port {port}" in line, line
        yield port, d / "client"
    finally:
        proc.kill()
        proc.wait(10)
        with contextlib.suppress(Exception):
            proc.stderr.close()  # type: ignore[union-attr]


def test_attach_over_ssh(sshd, tmp_path):
    port, key = sshd
    server = Server(tmp_path)
    try:
        env = ssh_env(server, key)
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "otrace", "attach", f"ssh://root@127.0.0.1:{port}/served_app"],
            input="counts\nquit\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=str(ROOT),
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert f"Attached to served_app (pid {server.pid})" in done.stderr
        assert "globals> {'requests': 0}" in done.stdout
        assert time.monotonic() - start < 60
        # a program that is not there: one clear line from the far side
        bad = subprocess.run(
            [sys.executable, "-m", "otrace", "attach", f"ssh://root@127.0.0.1:{port}/nothing"],
            input="",
            capture_output=True,
            text=True,
            env=env,
            cwd=str(ROOT),
            timeout=60,
        )
        assert bad.returncode != 0
        assert "no otrace service for a program named 'nothing'" in bad.stderr, bad.stderr
    finally:
        server.stop()


def test_fleet_console_over_ssh(sshd, tmp_path):
    """``--all ssh://host/PROGRAM``: the program's processes on the far host, and an
    unreachable host named in one line while the reachable one works."""
    port, key = sshd
    server = Server(tmp_path)
    try:
        env = ssh_env(server, key, "-o ConnectTimeout=5")
        dead = free_port()  # nothing listens there
        done = subprocess.run(
            [sys.executable, "-m", "otrace", "attach", "--all"]
            + [
                f"ssh://root@127.0.0.1:{port}/served_app",
                f"ssh://root@127.0.0.1:{dead}/served_app",
            ],
            input="counts\nls /osh/workers\nquit\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=str(ROOT),
            timeout=90,
        )
        assert done.returncode == 0, done.stderr
        assert f"Attached to 1 processes of served_app (pids {server.pid})" in done.stderr
        assert f"ssh://root@127.0.0.1:{dead}:" in done.stderr  # the unreachable host, named
        assert f"[worker {server.pid}] {{'requests': 0}}" in done.stdout
        assert f"ssh://root@127.0.0.1:{port}/{server.pid}" in done.stdout
    finally:
        server.stop()
