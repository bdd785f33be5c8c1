"""Unix commands: outside ``/osh`` a line that is not a shell command runs in bash.

Thread safety: the session's thread; the command runs in a child process with a timeout
(``shell_timeout``), its input closed, so it never waits for the terminal.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

from otrace.errors import OTraceError
from otrace.shell import safety
from otrace.shell.output import Result
from otrace.vfs import paths

if TYPE_CHECKING:
    from otrace.shell.session import Session


def run_unix(session: Session, line: str, result: Result) -> None:
    """Run ``line`` with bash in the session's current (real) directory, with a timeout."""
    safety.check_unix(session, line)
    params = session.params
    cwd = paths.render(session.cwd)
    env = dict(os.environ, **session.add_env)
    if params.osh_bin:
        env["PATH"] = os.path.abspath(params.osh_bin) + os.pathsep + env.get("PATH", "")
    try:
        proc = subprocess.run(
            ["/bin/bash", "-c", line],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",  # a command's output need not be UTF-8
            timeout=params.shell_timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise OTraceError(
            f"Timed out command execution '{line}' (shell_timeout {params.shell_timeout:g}s)"
        ) from None
    except OSError as exc:
        raise OTraceError(f"Cannot run '{line}': {exc}") from None
    if proc.stdout:
        result.write(proc.stdout.rstrip("\n"))
    if proc.stderr:
        result.error(proc.stderr.rstrip("\n"))
