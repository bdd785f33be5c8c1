"""Safe mode, enforced in one place.

**The contract.**  With ``safe_mode`` on, the shell is read-only inspection: it changes
nothing in the program or on the machine, and reveals no private names.

* Commands and options declare what they need (``unsafe="..."`` on :func:`command` and
  :class:`~otrace.shell.registry.Option`, or a ``safe_check`` for checks that depend on the
  arguments); :func:`check` is called by the dispatcher before every command runs, and
  refuses with a :class:`~otrace.errors.SafeModeError` naming what was refused.
* Unix commands outside ``/osh`` and parameters that act on the machine or the program
  (:data:`UNSAFE_PARAMS`) are refused here too.
* Paths and listings go through pure directory views (:mod:`otrace.vfs.nodes`): no names
  starting with ``_``, no property or ``__getattr__`` runs, no real files are browsed.
* Expressions are interpreted by :mod:`otrace.shell.pure_eval`: only operations known to be
  pure on the operand types; values are shown by :func:`otrace.vfs.pure.pure_repr`, which
  never calls a program's ``__repr__``/``__str__``.

docs/shell.rst states the same contract for users.

Thread safety: called on the session's thread.
"""

from __future__ import annotations

from typing import Any

from otrace.errors import SafeModeError

HINT = "set safe_mode False"

UNSAFE_PARAMS: dict[str, str] = {
    "append_traceback": "changes the messages of the program's exceptions",
    "deep_copy": "runs the program's __deepcopy__ on traced calls",
    "editor": "names a program to run",
    "exec_lock": "only matters for code execution",
    "log_remote": "sends log records over the network",
    "osh_bin": "changes what unix commands run",
    "pickle_file": "writes a database file",
    "unpickle_file": "opens a database file",
}


def refuse(what: str) -> SafeModeError:
    """``WHAT not permitted in safe mode; set safe_mode False`` (or WHAT as a full sentence)."""
    if what.endswith("in safe mode"):
        return SafeModeError(f"{what}; {HINT}")
    return SafeModeError(f"{what} not permitted in safe mode; {HINT}")


def check(sh: Any, cmd: Any, args: Any) -> None:
    """Refuse ``cmd`` with ``args`` if safe mode is on and it may change or reveal anything."""
    if not sh.params.safe_mode:
        return
    if cmd.unsafe:
        raise refuse(cmd.unsafe)
    for opt in cmd.options:
        if opt.unsafe and args.opts.get(opt.letter):
            name = f"-{opt.letter}" + (f"/--{opt.long}" if opt.long else "")
            raise refuse(f"{cmd.name} {name}: {opt.unsafe}")
    if args.stdout is not None:
        raise refuse(f"{cmd.name} > file: writing files")
    if args.stdin is not None and args.stdin.op == "<" and args.stdin.target:
        raise refuse(f"{cmd.name} < file: reading files")
    if cmd.safe_check is not None:
        cmd.safe_check(sh, args)


def check_unix(sh: Any, line: str) -> None:
    """Unix commands run on the machine: refused in safe mode."""
    if sh.params.safe_mode:
        raise refuse("unix commands (outside /osh)")


def check_param(name: str) -> None:
    """``set NAME VALUE`` for a parameter that acts on the machine or the program."""
    why = UNSAFE_PARAMS.get(name)
    if why:
        raise refuse(f"set {name} ({why})")


def check_file_write(what: str) -> None:
    raise refuse(f"{what}: writing files")
