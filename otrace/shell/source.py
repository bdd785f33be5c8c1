"""``source FILE``: the lines of a file run as if typed, with errors naming file and line.

Thread safety: the session's thread.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from otrace.errors import OTraceError
from otrace.shell.output import Result
from otrace.shell.redirect import read_text

if TYPE_CHECKING:
    from otrace.shell.session import Session

MAX_DEPTH = 20  # files sourcing files


def run_file(session: Session, path: str, result: Result, echo: bool = True) -> None:
    """Run the commands of the file ``path`` in ``session``; output and errors to ``result``.

    Blank lines and ``#`` comments are skipped; each line is echoed after the prompt unless
    it starts with ``noecho ``; ``quit`` stops the file (and is passed on).
    """
    if session._source_depth > MAX_DEPTH:
        raise OTraceError(f"source: nested too deeply at {path}")
    if not os.path.exists(path):
        raise OTraceError(f"Input file {path} not found")
    lines = read_text(path, "Error in reading").splitlines()  # bounded; devices and FIFOs refused
    session._source_depth += 1
    try:
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            silent = line.startswith("noecho ")
            if silent:
                line = line[len("noecho ") :]
            if echo and not silent:
                result.write(session.prompt() + line)
            sub = session.execute(line)
            for stream, text, kind in sub.chunks:
                if stream == "err":
                    result.error(f"{path}:{number}: {text}")
                else:
                    result.chunks.append((stream, text, kind))
            if sub.action == "quit":
                result.action = "quit"
                return
    finally:
        session._source_depth -= 1
