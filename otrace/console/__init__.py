"""Front ends: consoles that read lines and show results, clients of the otrace service.

:func:`make_console` picks the prompt_toolkit terminal when standard input and output are a
terminal, else the plain reader (pipes, scripts, tests).  Either drives a
:class:`~otrace.console.remote.RemoteSession`.
"""

from __future__ import annotations

from typing import Any

from otrace.console.plain import Console, PlainConsole
from otrace.console.remote import AttachError, RemoteSession


def is_terminal(stdin: Any, stdout: Any) -> bool:
    try:
        return bool(stdin.isatty() and stdout.isatty())
    except (AttributeError, ValueError):
        return False


def make_console(backend, stdin, stdout, stderr, echo_callback=None, local=None) -> Console:
    """The best console for these streams (called in the thread that will run it).

    ``local``: the program's runtime when the console is the program's own terminal."""
    if is_terminal(stdin, stdout):
        from otrace.console.terminal import TerminalConsole  # prompt_toolkit only when needed

        return TerminalConsole(backend, stdin, stdout, stderr, echo_callback, local=local)
    return PlainConsole(backend, stdin, stdout, stderr, echo_callback)


__all__ = [
    "AttachError",
    "Console",
    "PlainConsole",
    "RemoteSession",
    "is_terminal",
    "make_console",
]
