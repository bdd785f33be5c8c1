"""Redirections a command declares (:mod:`otrace.shell.registry`): reading ``< file`` and
``<<WORD`` here-documents, writing ``> file``.

The parser puts them in ``args.stdin``/``args.stdout``; a command calls :func:`read_input`
and :func:`write_output` when (and if) it gets that far, so its own checks (safe mode, a
valid target) come first.

Thread safety: the session's thread.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import Any

from otrace.errors import OTraceError, UsageError
from otrace.shell.output import Result
from otrace.shell.registry import Args

MAX_READ = 10_000_000  # characters read from a file named at the shell (source, view, < file)


def read_text(path: str, what: str) -> str:
    """The text of a regular file of at most MAX_READ characters; OTraceError otherwise.

    Devices, FIFOs and sockets are refused before they are opened (``/dev/zero`` never ends,
    a FIFO blocks until a writer comes).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise OTraceError(f"{what} from '{path}': no such file") from None
    except OSError as exc:
        raise OTraceError(f"{what} from '{path}': {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise OTraceError(f"{what} from '{path}': not a regular file")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_READ + 1)
    except OSError as exc:
        raise OTraceError(f"{what} from '{path}': {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise OTraceError(f"{what} from '{path}': not UTF-8 text ({exc.reason})") from None
    if len(text) > MAX_READ:
        raise OTraceError(f"{what} from '{path}': larger than {MAX_READ} characters")
    return text


def absolute_file(sh, name: str) -> str:
    """Expand ``~``/``~~w``; a relative name is taken relative to the work directory."""
    if not name:
        raise UsageError("missing file name after redirection")
    path = sh.tree.expand(name)
    if not os.path.isabs(path):
        path = os.path.join(sh.tree.work_dir or os.getcwd(), path)
    return path


def read_input(sh, args: Args, finish: Callable[[str], Any], missing: str) -> bool:
    """Hand the text of ``args.stdin`` to ``finish``: now, or after the here-doc's lines.

    ``< file`` reads the file; ``<`` alone or ``<<WORD`` take the front end's here-doc
    (``sh.hooks["here_doc"]``) if it gave one; else ``<<WORD`` collects the lines that
    follow, up to WORD, and a bare ``<`` is a UsageError saying ``missing``.  False if the
    command has no input redirection.
    """
    redirect = args.stdin
    if redirect is None:
        return False
    if redirect.op == "<" and redirect.target:
        finish(read_text(absolute_file(sh, redirect.target), "Error in reading"))
        return True
    here_doc = sh.hooks.get("here_doc")
    if here_doc is not None:
        finish(str(here_doc))
    elif redirect.op == "<<":
        collect_here_doc(sh, redirect.target, finish)
    else:
        raise UsageError(missing)
    return True


def collect_here_doc(sh, terminator: str, finish: Callable[[str], Any]) -> None:
    """Take the session's next input lines, up to ``terminator``, then call ``finish``."""
    lines: list[str] = []

    def collect(line: str, result: Result) -> None:
        if line.strip() == terminator:
            sh.hooks.pop("collect_line", None)
            previous, sh.out = sh.out, result
            try:
                finish("\n".join(lines) + "\n")
            finally:
                sh.out = previous
            return
        lines.append(line)
        result.incomplete = True

    sh.hooks["collect_line"] = collect
    sh.out.incomplete = True


def write_output(sh, args: Args, text: str) -> bool:
    """Write ``text`` (ending with a newline) to the file of ``args.stdout``; False if none."""
    if args.stdout is None:
        return False
    path = absolute_file(sh, args.stdout.target)
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise OTraceError(f"Cannot write {path}: {exc.strerror}") from None
    return True
