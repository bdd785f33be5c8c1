"""What a console drives: the session behind it, seen through the state the service sends.

A console (:mod:`otrace.console.plain`, :mod:`otrace.console.terminal`) runs lines and reads
its prompt through a *backend*: one remote session (:class:`~otrace.console.remote.
RemoteSession`) or a whole fleet of them (:class:`~otrace.fleet.session.FleetSession`).
Both derive what the console shows from one ``state`` dict -- the one the service sends
with every ``done`` and ``state`` frame (see :mod:`otrace.service.protocol`) -- through
:class:`Backend`; a fleet's ``state`` is the worker it browses, or its own.

Thread safety: the properties read ``state`` (replaced whole, never mutated) from any thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otrace.shell.output import Result

Poll = Callable[[], bool]  # True once the operator pressed Ctrl-C
Editor = Callable[[str, str, str], str]  # (text, label, editor) -> the edited text


class Backend:
    """The session behind a console, as its ``state`` describes it."""

    state: dict[str, Any]  # what the service sent last (a fleet: a property)

    def prompt(self) -> str:
        return str(self.state.get("prompt", "> "))

    @property
    def pending_code(self) -> bool:
        """Multi-line code waits for its next line."""
        return bool(self.state.get("pending"))

    @property
    def in_osh(self) -> bool:
        return bool(self.state.get("in_osh", True))

    @property
    def aliases(self) -> dict[str, list[str]]:
        return dict(self.state.get("aliases") or {})

    @property
    def cwd(self) -> tuple[str, ...]:
        return tuple(self.state.get("cwd") or ())

    def expand_alias(self, name: str, args: list[str]) -> list[str]:
        """As the session expands it (for highlighting what the line will run)."""
        from otrace.shell.session import Session

        return Session.expand_alias(self, name, args)  # type: ignore[arg-type]

    @property
    def secret(self) -> str:
        """The password prompt when the session waits for one (locked), else ''."""
        return str(self.state.get("secret", ""))

    @property
    def locked(self) -> bool:
        return bool(self.state.get("locked"))

    @property
    def auto_lock(self) -> float:
        """Idle seconds before the console locks itself (0: never)."""
        return float(self.state.get("auto_lock") or 0)

    def execute(
        self, line: str, width: int = 0, poll: Poll | None = None, on_edit: Editor | None = None
    ) -> Result:
        """Run ``line``; its result.  ``poll()`` is called about ten times a second while
        waiting and returns True when the operator pressed Ctrl-C.  ``on_edit(text, label,
        editor)`` edits text for the ``edit`` command."""
        raise NotImplementedError
