"""The output protocol: commands write through one object, never ``print``.

A :class:`Result` collects what one input line produced as chunks of (stream, text, kind):
``stream`` is ``out`` or ``err``; ``kind`` tells a front end how it may render the text
(``python`` source may be highlighted, ``text`` is shown as is).  The terminal, the browser
and tests all render the same chunks.  Text is stored with its control characters escaped
(line breaks and tabs aside): values, names and messages come from the program, a file or a
browser, and must not drive the operator's terminal (clear screen, OSC 52 clipboard writes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from otrace.contexts.safe import terminal_text


@dataclass
class Result:
    chunks: list[tuple[str, str, str]] = field(default_factory=list)
    incomplete: bool = False  # the line started a compound statement; show "... "
    action: str = ""  # what the front end must do: "quit", "lock", "repeat"
    action_arg: str = ""

    def write(self, text: str, kind: str = "text") -> None:
        """Write a line (or lines) of normal output (control characters escaped)."""
        self.chunks.append(("out", terminal_text(text), kind))

    def error(self, text: str) -> None:
        """Write an error line (control characters escaped)."""
        self.chunks.append(("err", terminal_text(text), "text"))

    @property
    def out(self) -> str:
        return "".join(t + "\n" for s, t, _ in self.chunks if s == "out")

    @property
    def err(self) -> str:
        return "".join(t + "\n" for s, t, _ in self.chunks if s == "err")

    def __iter__(self):
        return iter((self.out, self.err))
