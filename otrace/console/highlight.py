"""Syntax highlighting with pygments: Python typed at the prompt and Python shown by ``view``.

* :class:`ShellLexer` colours the Python part of an input line (what
  :func:`otrace.shell.completion.python_start` says is Python: ``!code``, ``pr``/``exec``
  arguments, default ``pr`` expressions, continuation lines) through prompt_toolkit's
  :class:`~prompt_toolkit.lexers.PygmentsLexer`; shell commands are left plain.
* :func:`highlight_python` turns source text into ANSI-coloured text for a terminal.

Thread safety: :func:`highlight_python` is a pure function (any thread); the lexer is used by
the prompt, in the shell thread.
"""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.lexers import Lexer, PygmentsLexer
from pygments import highlight
from pygments.formatters import TerminalFormatter
from pygments.lexers.python import PythonLexer

from otrace.shell.completion import python_start


def highlight_python(text: str) -> str:
    """``text`` with ANSI colour codes for Python syntax (same lines, same line ends)."""
    coloured = highlight(text, PythonLexer(), TerminalFormatter())
    if coloured.endswith("\n") and not text.endswith("\n"):
        coloured = coloured[:-1]
    return coloured


class ShellLexer(Lexer):
    """Colours the Python code of an input line; the command word before it stays plain."""

    def __init__(self, session):
        self.session = session
        self.python = PygmentsLexer(PythonLexer)

    def lex_document(self, document: Document) -> Callable[[int], StyleAndTextTuples]:
        text = document.text
        try:
            start = python_start(self.session, text)
        except Exception:
            start = None
        lines = document.lines
        if start is None:
            return lambda i: [("", lines[i])] if i < len(lines) else []
        head = text[:start]
        if "\n" in head:  # not a single-line prefix: do not guess
            return lambda i: [("", lines[i])] if i < len(lines) else []
        code_lines = self.python.lex_document(Document(text[start:]))

        def get_line(i: int) -> StyleAndTextTuples:
            fragments = code_lines(i)
            if i == 0 and head:
                return [("", head), *fragments]
            return fragments

        return get_line
