"""``lock`` of one console, enforced by the service (no key a client sends gets past it).

A console locks with ``lock`` (or ``auto_lock`` idle seconds, sent by the client as
``lock``).  With no password set yet, the next two lines set one (``Set password:``,
``Confirm password:``; an empty line or Ctrl-C cancels); then every line is a password
attempt until one matches.  Nothing else runs meanwhile and completion answers nothing.

Thread safety: used by its console's worker thread only.
"""

from __future__ import annotations

from typing import Any

from otrace.passwords import encrypt_password, verify_password

PROMPTS = {
    "set": "Set password: ",
    "confirm": "Confirm password: ",
    "unlock": "Enter password to unlock: ",
}


class ConsoleLock:
    """The lock state of one console: ``stage`` is "", "set", "confirm" or "unlock"."""

    def __init__(self, params: Any) -> None:
        self.params = params
        self.stage = ""
        self._first = ""

    @property
    def engaged(self) -> bool:
        return bool(self.stage)

    def lock(self) -> None:
        self.stage = "unlock" if self.params.password else "set"

    def answer(self, text: str) -> tuple[list[str], str]:
        """Take one typed line: (error lines to show, audit outcome or "")."""
        stage = self.stage
        if stage == "set":
            if not text:
                self.stage = ""
                return ["Lock cancelled"], ""
            self._first, self.stage = text, "confirm"
            return [], ""
        if stage == "confirm":
            first, self._first = self._first, ""
            if text != first:
                self.stage = "set"
                return ["Passwords differ; try again"], ""
            self.params.set("password", encrypt_password(text))
            self.stage = "unlock"
            return [], ""
        if verify_password(text, self.params.password):
            self.stage = ""
            return [], "ok"
        return ["Wrong password"], "err"

    def cancel(self) -> list[str]:
        """Ctrl-C: cancels setting a password; a locked console stays locked."""
        if self.stage in ("set", "confirm"):
            self.stage, self._first = "", ""
            return ["Lock cancelled"]
        return []

    def state(self) -> dict[str, Any]:
        prompt = PROMPTS[self.stage]
        return {
            "prompt": prompt,
            "pending": False,
            "secret": prompt,
            "locked": self.stage == "unlock",
            "auto_lock": 0,
        }
