"""``set_trace``: open the object shell right here, pdb-style."""

from __future__ import annotations

import sys
from typing import Any

from otrace.oshell.shell import OShell


def set_trace(
    globals_dict: dict[str, Any],
    locals_dict: dict[str, Any] | None = None,
    new_thread: bool = False,
    wait_to_run: bool = False,
    init_file: str = "",
) -> OShell:
    """Open the shell on ``globals_dict`` right here (pdb-style); returns after ``quit``
    (or at once with ``new_thread``).  Called in a function, the shell starts in
    ``/osh/locals`` (the caller's locals, taken from its frame when not given)."""
    if locals_dict is None:
        frame = sys._getframe(1)
        locals_dict = frame.f_locals if frame.f_locals is not frame.f_globals else globals_dict
    shell = OShell(
        globals_dict,
        locals_dict,
        allow_unsafe=True,
        new_thread=new_thread or wait_to_run,
        init_file=init_file or None,
    )
    shell.runtime.params.set("safe_mode", False)  # pdb-style, in the programmer's own code
    if locals_dict is not globals_dict:
        # called in a function: start among its locals, so that its names resolve as typed
        # (then the globals), as in pdb
        shell.session.execute("cd /osh/locals")
    shell.loop(wait_to_run=wait_to_run)
    return shell
