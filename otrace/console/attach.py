"""``otrace attach`` and ``otrace ps``: find otrace services on this machine, open a console.

``otrace attach TARGET`` takes a pid, a program name (as ``otrace ps`` shows it) or a socket
path; it connects, and runs the same console as the program's own terminal would (the
prompt_toolkit one on a terminal, the plain line reader on a pipe).  ``quit`` and Ctrl-D
detach; the program runs on.

Thread safety: command-line entry points; they run in the caller's (main) thread.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any

from otrace.console import make_console
from otrace.console.remote import AttachError, RemoteSession
from otrace.service import paths


def find_socket(target: str) -> str:
    """The socket path for a pid, program name or path; AttachError if there is none."""
    if os.sep in target or target.endswith(paths.SUFFIX):
        if not os.path.exists(target):
            raise AttachError(f"no such socket: {target}")
        return target
    sockets = paths.list_sockets()
    if target.isdigit():
        pid = int(target)
        found = [p for p in sockets if (paths.parse_name(p) or ("", -1))[1] == pid]
        if not found:
            if not paths.pid_alive(pid):
                raise AttachError(f"no process {pid}")
            raise AttachError(
                f"process {pid} has no otrace service in {paths.socket_dir()} "
                "(is it listening? OShell(listen=True) or OTRACE_LISTEN=1; another user's?)"
            )
        return found[0]
    found = [p for p in sockets if (paths.parse_name(p) or ("",))[0] == target]
    found = [p for p in found if paths.pid_alive((paths.parse_name(p) or ("", 0))[1])]
    if not found:
        raise AttachError(f"no otrace service for a program named {target!r} (see otrace ps)")
    if len(found) > 1:
        pids = ", ".join(str((paths.parse_name(p) or ("", 0))[1]) for p in found)
        raise AttachError(f"several processes named {target!r} (pids {pids}): give a pid")
    return found[0]


def connect(path: str, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except PermissionError:
        sock.close()
        owner = _owner(path)
        raise AttachError(f"permission denied: {path}{owner}") from None
    except ConnectionRefusedError:
        sock.close()
        raise AttachError(f"nothing listens on {path} (the process ended?)") from None
    except OSError as exc:
        sock.close()
        raise AttachError(f"cannot connect to {path}: {exc.strerror or exc}") from None
    return sock


def _owner(path: str) -> str:
    try:
        return f" (owned by uid {os.stat(path).st_uid})"
    except OSError:
        return ""


def attach(
    target: str,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    sock: socket.socket | None = None,
) -> int:
    """Open a console on ``target`` (or over ``sock``, already connected to a service,
    e.g. through ssh); the exit status (0 after detaching)."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    try:
        if sock is None:
            sock = connect(find_socket(target))
        backend = RemoteSession(sock, client="otrace attach")
        welcome = backend.hello("attach")
    except AttachError as exc:
        _say(stderr, f"otrace: {exc}")
        return 1
    _say(
        stderr,
        f"Attached to {welcome.get('program')} (pid {welcome.get('pid')}), console "
        f"{welcome.get('session')}.  quit or Ctrl-D detaches; the program runs on.",
    )
    banner = welcome.get("banner")
    if banner:
        _say(stdout, banner)
    console = make_console(backend, stdin, stdout, stderr)
    try:
        console.run()
    finally:
        backend.close()
    return 2 if backend.lost else 0  # 2: the connection was lost, not closed


def service_info(path: str, timeout: float = 2.0) -> dict[str, Any]:
    backend = RemoteSession(connect(path, timeout), client="otrace ps")
    try:
        return backend.hello("info", timeout)
    finally:
        backend.close()


def ps(stdout: Any = None) -> int:
    """List attachable processes: pid, program, consoles, uptime, socket."""
    stdout = stdout or sys.stdout
    rows = []
    for path in paths.list_sockets():
        parsed = paths.parse_name(path)
        if parsed is None or not paths.pid_alive(parsed[1]):
            continue
        try:
            info = service_info(path)
        except AttachError as exc:
            rows.append((str(parsed[1]), parsed[0], "?", "?", f"{path}  ({exc})"))
            continue
        uptime = _duration(time.time() - float(info.get("started", time.time())))
        rows.append(
            (
                str(info.get("pid")),
                str(info.get("program")),
                str(info.get("consoles")),
                uptime,
                path,
            )
        )
    if not rows:
        _say(stdout, f"No attachable processes (sockets in {paths.socket_dir()})")
        return 0
    # grouped by program (a forked server's workers together), each group by pid
    rows.sort(key=lambda r: (r[1], int(r[0]) if r[0].isdigit() else 0))
    header = ("PID", "PROGRAM", "CONSOLES", "UPTIME", "SOCKET")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(4)]

    def show(row: tuple[str, ...]) -> None:
        cells = "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True))
        _say(stdout, cells + "  " + row[4])

    show(header)
    programs = sorted({r[1] for r in rows})
    for program in programs:
        group = [r for r in rows if r[1] == program]
        if len(programs) > 1 or len(group) > 1:
            _say(stdout, f"{program}: {len(group)} process(es); otrace attach --all {program}")
        for row in group:
            show(row)
    return 0


def _say(stream: Any, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


def _duration(seconds: float) -> str:
    s = int(max(seconds, 0))
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
