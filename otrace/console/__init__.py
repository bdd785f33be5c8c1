"""Front ends that read lines and show results: a plain line reader and the terminal.

:func:`make_console` picks the prompt_toolkit terminal when standard input is a terminal,
else the plain reader (pipes, CI, tests).
"""

from __future__ import annotations

from otrace.console.plain import Console, PlainConsole


def make_console(shell, stdin, stdout, stderr) -> Console:
    """The best console for these streams (called in the thread that will run it)."""
    try:
        interactive = stdin.isatty() and stdout.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if interactive:
        from otrace.console.terminal import TerminalConsole  # prompt_toolkit only when needed

        return TerminalConsole(shell, stdin, stdout, stderr)
    return PlainConsole(shell, stdin, stdout, stderr)


__all__ = ["Console", "PlainConsole", "make_console"]
