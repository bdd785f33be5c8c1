"""``< file`` and ``> file`` after a command's target (edit, view, unpatch)."""

from __future__ import annotations

import os

from otrace.errors import UsageError


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


def absolute_file(sh, name: str) -> str:
    """Expand ``~``/``~~w``; a relative name is taken relative to the work directory."""
    if not name:
        raise UsageError("missing file name after redirection")
    path = sh.tree.expand(name)
    if not os.path.isabs(path):
        path = os.path.join(sh.tree.work_dir or os.getcwd(), path)
    return path
