"""``otrace attach --all PROGRAM``: a console over every attachable process of a program.

Thread safety: a command-line entry point; runs in the caller's (main) thread.
"""

from __future__ import annotations

import sys
from typing import Any

from otrace.console import make_console
from otrace.console.remote import AttachError
from otrace.fleet.session import FleetSession


def attach_all(
    program: str,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    hosts: tuple[str, ...] = (),
) -> int:
    """Open a fleet console on ``program`` (on this host, or on ``hosts``: ssh:// addresses
    without the program); the exit status (0 after detaching)."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    fleet = FleetSession(program, hosts=hosts)
    try:
        notes = fleet.start()
    except AttachError as exc:
        stderr.write(f"otrace: {exc}\n")
        stderr.flush()
        return 1
    pids = ", ".join(str(m.pid) for m in fleet.live())
    for note in notes:
        stderr.write(f"otrace: {note}\n")
    stderr.write(
        f"Attached to {len(fleet.members)} processes of {program} (pids {pids}).  "
        "cd /osh/workers/PID browses one; quit or Ctrl-D detaches; the programs run on.\n"
    )
    stderr.flush()
    console = make_console(fleet, stdin, stdout, stderr)
    try:
        console.run()
    finally:
        fleet.close()
    return 0
