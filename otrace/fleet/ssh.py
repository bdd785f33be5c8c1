"""Consoles over SSH: ``otrace bridge TARGET`` and ``otrace attach ssh://[user@]host/PROGRAM``.

``otrace bridge TARGET`` runs on the far host (started by ``ssh``): it connects to the
service socket of TARGET there (a pid, a program name or a socket path, as for ``otrace
attach``) and copies bytes between its standard input/output and that socket.  The console
protocol runs end to end, unchanged; the far service checks the peer credentials of the
bridge (the SSH login's user).  No network port is opened: authentication, keys, jump hosts
and ``~/.ssh/config`` are the system OpenSSH client's.

On this side :func:`ssh_socket` starts ``ssh -T [user@]host otrace bridge TARGET`` and gives
a socket whose other end is pumped to and from the ssh process.  ``$OTRACE_SSH`` adds
options for ssh (``-i KEY -p PORT ...``, split like a shell); ``$OTRACE_REMOTE`` is the far
command that runs otrace (default ``otrace``; e.g. ``/opt/venv/bin/python -m otrace``).

Thread safety: :func:`ssh_socket` from any thread; its two pump threads end when either side
closes.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from otrace.console.attach import connect, find_socket
from otrace.console.remote import AttachError

CHUNK = 65536


def parse_url(url: str) -> tuple[str, str | None, str]:
    """(destination, port, target) of ``ssh://[user@]host[:port]/TARGET``."""
    parts = urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname or not parts.path.strip("/"):
        raise AttachError(f"not an ssh://[user@]host/PROGRAM address: {url}")
    dest = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
    port = str(parts.port) if parts.port else None
    return dest, port, parts.path.strip("/")


def ssh_command(url: str) -> list[str]:
    dest, port, target = parse_url(url)
    command = ["ssh", "-T", "-o", "BatchMode=yes"]
    command += shlex.split(os.environ.get("OTRACE_SSH", ""))
    if port:
        command += ["-p", port]
    remote = os.environ.get("OTRACE_REMOTE", "otrace")
    return [*command, dest, f"{remote} bridge {shlex.quote(target)}"]


def ssh_socket(url: str) -> tuple[socket.socket, subprocess.Popen[bytes]]:
    """A socket speaking to TARGET's service on the far host, through ssh."""
    command = ssh_command(url)
    try:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None)
    except OSError as exc:
        raise AttachError(f"cannot run ssh: {exc.strerror or exc}") from None
    ours, theirs = socket.socketpair()
    assert proc.stdin is not None and proc.stdout is not None
    _pump_threads(ours.fileno(), proc.stdin.fileno(), proc.stdout.fileno(), ours.fileno(), ours)
    return theirs, proc


def _pump_threads(in1: int, out1: int, in2: int, out2: int, sock: socket.socket) -> None:
    """Copy in1 -> out1 and in2 -> out2 until either ends (then ``sock`` is shut down)."""

    def ended() -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    for src, dst in ((in1, out1), (in2, out2)):
        threading.Thread(
            target=_copy, args=(src, dst, ended), name="otrace-ssh", daemon=True
        ).start()


def _copy(src: int, dst: int, ended: Callable[[], object]) -> None:
    """Bytes from file descriptor ``src`` to ``dst`` until one of them ends; then ``ended()``."""
    try:
        while True:
            data = os.read(src, CHUNK)
            if not data:
                break
            while data:
                data = data[os.write(dst, data) :]
    except OSError:
        pass
    finally:
        ended()


def bridge(target: str) -> int:
    """``otrace bridge TARGET``: stdin/stdout <-> TARGET's socket; the exit status."""
    try:
        sock = connect(find_socket(target))
    except AttachError as exc:
        sys.stderr.write(f"otrace bridge: {exc}\n")
        return 1
    sock.settimeout(None)
    done = threading.Event()
    for src, dst in ((0, sock.fileno()), (sock.fileno(), 1)):
        threading.Thread(target=_copy, args=(src, dst, done.set), daemon=True).start()
    done.wait()
    with contextlib.suppress(OSError):
        sock.close()
    return 0


def attach_ssh(url: str) -> int:
    """``otrace attach ssh://[user@]host/TARGET``: a console through ssh."""
    from otrace.console.attach import attach

    try:
        sock, proc = ssh_socket(url)
    except AttachError as exc:
        sys.stderr.write(f"otrace: {exc}\n")
        return 1
    try:
        return attach(url, sock=sock)
    finally:
        with contextlib.suppress(OSError):
            sock.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
