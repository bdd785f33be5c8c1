"""Highlighting: Python output for the terminal, Python input in the prompt."""

from __future__ import annotations

import pytest
from prompt_toolkit.document import Document

import otrace.shell.commands  # noqa: F401 - declares the commands
from otrace.console.highlight import ShellLexer, highlight_python
from otrace.shell.session import Session


@pytest.fixture
def session():
    s = Session({"x": 1}, allow_unsafe=True)
    yield s
    s.close()


def test_highlight_python_colours_and_keeps_lines():
    source = "def f(a):\n    return a + 1"
    coloured = highlight_python(source)
    assert "\x1b[" in coloured
    assert coloured.count("\n") == source.count("\n")
    assert not coloured.endswith("\n")


def styles(session, text: str) -> list[tuple[str, str]]:
    return ShellLexer(session).lex_document(Document(text))(0)


def test_lexer_colours_only_the_python_part(session):
    frags = styles(session, "pr len(x) + 1")
    assert frags[0] == ("", "pr ")
    assert any("pygments" in style for style, _ in frags[1:])
    assert "".join(t for _, t in frags) == "pr len(x) + 1"


def test_lexer_leaves_commands_plain(session):
    assert styles(session, "ls -l x") == [("", "ls -l x")]


def test_lexer_colours_exec_and_default_expressions(session):
    assert any("keyword" in style.lower() for style, _ in styles(session, "!for i in x: pass"))
    assert any("pygments" in style for style, _ in styles(session, "x + 1"))
