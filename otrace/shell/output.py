"""The output protocol: commands write through one object, never ``print``.

A :class:`Result` collects what one input line produced as chunks of (stream, text, kind):
``stream`` is ``out`` or ``err``; ``kind`` tells a front end how it may render the text
(``python`` source may be highlighted, ``text`` is shown as is).  The terminal, the browser
and tests all render the same chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Result:
    chunks: list[tuple[str, str, str]] = field(default_factory=list)
    incomplete: bool = False  # the line started a compound statement; show "... "
    action: str = ""  # what the front end must do: "quit", "lock", "repeat"
    action_arg: str = ""

    def write(self, text: str, kind: str = "text") -> None:
        """Write a line (or lines) of normal output."""
        self.chunks.append(("out", text, kind))

    def error(self, text: str) -> None:
        """Write an error line."""
        self.chunks.append(("err", text, "text"))

    @property
    def out(self) -> str:
        return "".join(t + "\n" for s, t, _ in self.chunks if s == "out")

    @property
    def err(self) -> str:
        return "".join(t + "\n" for s, t, _ in self.chunks if s == "err")

    def __iter__(self):
        return iter((self.out, self.err))
