"""``otrace inject``, step 1: checks that need no debugger (the process, ptrace, gdb).

Any thread; no shared state.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from otrace.inject import InjectError


def _status_fields(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        raise InjectError(f"no process {pid}") from None
    except OSError as exc:
        raise InjectError(f"cannot inspect process {pid}: {exc.strerror}") from None
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return fields


def _ptrace_scope() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip())
    except (OSError, ValueError):
        return None


def check_target(pid: int) -> dict[str, str]:
    """Refuse (InjectError) what ptrace cannot or must not reach; ``/proc/PID/status``."""
    if pid == os.getpid():
        raise InjectError("cannot inject into otrace inject itself")
    fields = _status_fields(pid)
    if fields.get("State", "").startswith("Z"):
        raise InjectError(f"process {pid} has exited (zombie)")
    tracer = int(fields.get("TracerPid", "0") or 0)
    if tracer:
        raise InjectError(
            f"ptrace not permitted: process {pid} is already traced by process {tracer} "
            "(a debugger or strace); detach it first"
        )
    uid = int(fields.get("Uid", "0").split()[1])  # effective uid
    euid = os.geteuid()
    if euid != 0 and euid != uid:
        raise InjectError(
            f"ptrace not permitted: process {pid} belongs to uid {uid}, you are uid {euid} "
            "(run as its user or as root)"
        )
    scope = _ptrace_scope()
    if scope == 3:
        raise InjectError("ptrace not permitted: kernel.yama.ptrace_scope is 3 (ptrace disabled)")
    if scope in (1, 2) and euid != 0:
        raise InjectError(
            f"ptrace not permitted: kernel.yama.ptrace_scope is {scope} (only "
            + ("ancestors or root" if scope == 1 else "root")
            + " may attach; sysctl kernel.yama.ptrace_scope=0, or run as root)"
        )
    return fields


def find_gdb(gdb: str | None = None) -> str:
    """The gdb to use: ``gdb`` (a path or a name) or ``$OTRACE_GDB`` or ``gdb`` on PATH."""
    name = gdb or os.environ.get("OTRACE_GDB") or "gdb"
    found = shutil.which(name)
    if found is None:
        raise InjectError(f"gdb is not installed ({name} not found; apt-get install gdb)")
    return found
