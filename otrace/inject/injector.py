"""``otrace inject``: the whole injection (checks, scheduling, waiting for the target's
status file) and the command.

Any thread; no shared state.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from otrace.inject import InjectError
from otrace.inject.checks import check_target, find_gdb
from otrace.inject.payload import injected_statement
from otrace.inject.schedule import schedule_with_gdb, schedule_with_remote_exec


def inject(
    pid: int,
    *,
    paths: list[str] | tuple[str, ...] = (),
    gdb: str | None = None,
    timeout: float = 10.0,
    gdb_timeout: float = 60.0,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Start otrace in process ``pid``; what :func:`otrace.bootstrap.start_injected` did.

    ``paths`` are put first on the target's ``sys.path`` (directories holding the ``otrace``
    package).  Waits up to ``timeout`` s for the target to run the start-up.  Raises
    :class:`InjectError` (one line) for every refusal and failure; the target runs on.
    """
    fields = check_target(pid)
    workdir = Path(tempfile.mkdtemp(prefix="otrace-inject-"))
    try:
        uid = int(fields.get("Uid", "0").split()[1])
        gid = int(fields.get("Gid", "0").split()[1])
        if os.geteuid() == 0 and uid != 0:
            os.chown(workdir, uid, gid)  # the target writes its status here
        status = workdir / "status.json"
        resolved = [os.path.abspath(p) for p in paths]
        code = injected_statement(str(status), resolved, options or {})
        if not schedule_with_remote_exec(pid, code, workdir):
            schedule_with_gdb(pid, code, workdir, find_gdb(gdb), gdb_timeout)
        deadline = time.monotonic() + timeout
        while not status.exists():
            if time.monotonic() > deadline:
                raise InjectError(
                    f"start-up is scheduled in process {pid}, but its main thread has run no "
                    f"Python code for {timeout:g} s (blocked in a call, or an idle event "
                    "loop): otrace starts when it does"
                )
            if not Path(f"/proc/{pid}").exists():
                raise InjectError(f"process {pid} ended before otrace started")
            time.sleep(0.02)
        result = json.loads(status.read_text())
    finally:
        # a start-up that runs later finds no directory and reports nowhere (it still starts)
        shutil.rmtree(workdir, ignore_errors=True)
    if not result.get("ok"):
        stage = result.get("stage")
        error = result.get("error", "?")
        if stage == "import":
            raise InjectError(
                f"otrace cannot be imported in process {pid} ({error}; Python "
                f"{result.get('python')} at {result.get('executable')}): install otrace in "
                "its environment, or name the directory that holds it with --path"
            )
        if stage == "bootstrap":
            raise InjectError(
                f"the otrace process {pid} imports ({result.get('otrace')} from "
                f"{result.get('otrace_path')}) cannot be started this way ({error}); "
                "name a newer one with --path"
            )
        raise InjectError(f"otrace did not start in process {pid}: {error}")
    return result


def describe(result: dict[str, Any]) -> str:
    """One line for the operator."""
    where = "its main thread" if result.get("main_thread") else f"thread {result.get('thread')}"
    loop = f", {result['event_loop']} event loop" if result.get("event_loop") else ""
    again = " (it was already running)" if result.get("again") else ""
    return (
        f"otrace {result.get('otrace')} started in process {result.get('pid')}{again}: "
        f"CPython {result.get('python')}, otrace from {result.get('otrace_path')}, "
        f"on {where}{loop}; started {result.get('started')}"
    )


def main(argv: list[str] | None = None) -> int:
    """``otrace inject [--path DIR]... [--gdb GDB] [--timeout S] PID``."""
    parser = argparse.ArgumentParser(
        prog="otrace inject",
        description="Start otrace inside a running CPython 3.11+ process that never "
        "imported it (through gdb; sys.remote_exec on 3.14+).",
    )
    parser.add_argument("pid", type=int, help="the process")
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory holding the otrace package, put first on the target's sys.path",
    )
    parser.add_argument("--gdb", help="the gdb to use (default: $OTRACE_GDB or gdb on PATH)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds to wait for the target to start otrace (default 10)",
    )
    opts = parser.parse_args(argv)
    try:
        result = inject(opts.pid, paths=opts.path, gdb=opts.gdb, timeout=opts.timeout)
    except InjectError as exc:
        sys.stderr.write(f"otrace inject: {exc}\n")
        return 2
    sys.stdout.write(describe(result) + "\n")
    return 0
