"""``< file`` and ``> file`` after a command's target (edit, view, unpatch)."""

from __future__ import annotations

import os
import stat

from otrace.errors import OTraceError, UsageError


def split_redirect(text: str) -> tuple[str, str, str]:
    """Split ``target < file`` / ``target>file`` into (target, op, filename).

    ``op`` is ``<``, ``>`` or empty.  A here-document start ``<<WORD`` is returned as op
    ``<<`` with WORD as the file name.
    """
    for op in ("<<", "<", ">"):
        if op in text:
            head, _, tail = text.partition(op)
            if op == "<" and tail.startswith("<"):
                continue
            return head.strip(), op, tail.strip()
    return text.strip(), "", ""


MAX_READ = 10_000_000  # bytes read from a file named at the shell (source, view, edit <)


def read_text(path: str, what: str) -> str:
    """The text of a regular file of at most MAX_READ bytes; OTraceError otherwise.

    Devices, FIFOs and sockets are refused before they are opened (``/dev/zero`` never ends,
    a FIFO blocks until a writer comes).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise OTraceError(f"{what}: file {path} not found") from None
    except OSError as exc:
        raise OTraceError(f"{what}: cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise OTraceError(f"{what}: {path} is not a regular file")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(MAX_READ + 1)
    except OSError as exc:
        raise OTraceError(f"{what}: cannot read {path}: {exc.strerror}") from None
    if len(text) > MAX_READ:
        raise OTraceError(f"{what}: {path} is larger than {MAX_READ} characters")
    return text


def absolute_file(sh, name: str) -> str:
    """Expand ``~``/``~~w``; a relative name is taken relative to the work directory."""
    if not name:
        raise UsageError("missing file name after redirection")
    path = sh.tree.expand(name)
    if not os.path.isabs(path):
        path = os.path.join(sh.tree.work_dir or os.getcwd(), path)
    return path
