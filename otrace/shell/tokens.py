"""The shell's one tokenizer: an input line to words, in time linear in its length.

Quoting follows POSIX ``shlex.split`` (which the shell used before): blanks (space, tab,
CR, LF) separate words; ``'...'`` is literal; in ``"..."`` a backslash escapes only ``"``
and ``\\``; outside quotes a backslash escapes any character; ``''`` is an empty word.
With ``operators=True`` the unquoted operators ``<<``, ``<``, ``>`` and ``;`` are words of
their own (:attr:`Word.op`); :func:`glue` puts them back into the words they touched, for a
command that takes no redirection, so ``trace -c qty>2 f`` means what it did.

Each :class:`Word` keeps where it was in the line, so completion knows which word the
cursor is in and a command can take the raw rest of the line.

Bad input is refused with a one-line :class:`LineError`: a line longer than
:data:`MAX_LINE` characters (checked before any work is done), NUL characters (no file name,
command or Python source may hold one) and lone surrogates (they cannot be encoded for a
file name, a subprocess or the compiler; they appear when undecodable bytes are read with
``surrogateescape``).

Thread safety: pure functions, any thread.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from otrace.errors import UsageError

MAX_LINE = 100_000  # characters in one input line
OPERATORS = ("<<", "<", ">", ";")
BLANKS = " \t\r\n"

_BAD_CHAR = re.compile(r"[\x00\ud800-\udfff]")
# One match per piece of a word (or a run of blanks); a piece never spans a word boundary.
_PIECE = r"""
    (?P<blank>[ \t\r\n]+)
  | '(?P<single>[^']*)'
  | "(?P<double>[^"\\]*(?:\\.[^"\\]*)*)"
  | \\(?P<escaped>.)
  | (?P<open>['"\\])
"""
_PLAIN = re.compile(r"(?P<plain>[^ \t\r\n'\"\\]+)|" + _PIECE, re.VERBOSE | re.DOTALL)
_PLAIN_OPS = re.compile(
    r"(?P<op><<|[<>;])|(?P<plain>[^ \t\r\n'\"\\<>;]+)|" + _PIECE, re.VERBOSE | re.DOTALL
)
_SIMPLE = re.compile(r"[^ \t\r\n]+")
_SIMPLE_OPS = re.compile(r"(<<|[<>;])|[^ \t\r\n<>;]+")
_DOUBLE_ESCAPE = re.compile(r'\\(["\\])')


class LineError(UsageError):
    """An input line the shell cannot split or will not take."""


class Word(NamedTuple):
    """One word: its value (quotes removed) and where its raw text is in the line.

    ``start``/``end`` are -1 for a word that was not typed (from an alias).
    """

    text: str
    start: int = -1
    end: int = -1
    op: bool = False  # an unquoted operator (<<, <, >, ;)


def check_line(line: str) -> None:
    """Refuse a line that no command can take (too long, NUL, lone surrogate)."""
    if len(line) > MAX_LINE:
        raise LineError(
            f"Input line too long ({len(line)} characters; at most {MAX_LINE} are accepted)"
        )
    bad = _BAD_CHAR.search(line)
    if bad is not None:
        char = bad.group()
        what = "a NUL character" if char == "\x00" else f"a lone surrogate U+{ord(char):04X}"
        raise LineError(f"Input line contains {what} at column {bad.start() + 1}; nothing was run")


def tokenize(line: str, operators: bool = False, partial: bool = False) -> list[Word]:
    """Split ``line`` into words.

    :param operators: make unquoted ``<<``, ``<``, ``>``, ``;`` words of their own.
    :param partial: the line ends at the cursor: a trailing blank gives a last, empty word
        (the word about to be typed).
    :raises LineError: an unclosed quote, a trailing backslash, or a line
        :func:`check_line` refuses.
    """
    check_line(line)
    if not ("'" in line or '"' in line or "\\" in line):  # the common case, at C speed
        simple = _simple(line, operators)
        if partial and (not simple or simple[-1].end < len(line) or simple[-1].op):
            simple.append(Word("", len(line), len(line)))
        return simple
    pattern = _PLAIN_OPS if operators else _PLAIN
    words: list[Word] = []
    pieces: list[str] = []
    start = -1  # start of the word being built, -1 between words
    pos, n = 0, len(line)
    while pos < n:
        m = pattern.match(line, pos)
        assert m is not None  # the pattern matches any character
        kind = m.lastgroup or ""
        if kind == "blank":
            if start >= 0:
                words.append(Word("".join(pieces), start, pos))
                pieces, start = [], -1
        elif kind == "op":
            if start >= 0:
                words.append(Word("".join(pieces), start, pos))
                pieces, start = [], -1
            words.append(Word(m.group(), pos, m.end(), op=True))
        elif kind == "open":
            raise LineError(
                "No escaped character (a lone backslash ends the line)"
                if m.group() == "\\"
                else f"No closing quotation ({m.group()} at column {pos + 1})"
            )
        else:
            if start < 0:
                start = pos
            text = m.group(kind)
            if kind == "double" and "\\" in text:
                text = _DOUBLE_ESCAPE.sub(r"\1", text)
            pieces.append(text)
        pos = m.end()
    if start >= 0:
        words.append(Word("".join(pieces), start, n))
    elif partial:
        words.append(Word("", n, n))
    return words


def _simple(line: str, operators: bool) -> list[Word]:
    if not operators:
        return [Word(m.group(), m.start(), m.end()) for m in _SIMPLE.finditer(line)]
    return [
        Word(m.group(), m.start(), m.end(), m.group(1) is not None)
        for m in _SIMPLE_OPS.finditer(line)
    ]


def glue(words: list[Word], keep: tuple[str, ...] = ()) -> list[Word]:
    """Operators (but those in ``keep``) back into the words they touch, as if they had not
    been recognised."""
    if not any(w.op and w.text not in keep for w in words):
        return words
    out: list[Word] = []
    after_op = False  # the previous token was an operator being glued
    for w in words:
        kept = w.op and w.text in keep
        prev = out[-1] if out else None
        if (
            not kept
            and prev is not None
            and not prev.op
            and prev.end >= 0
            and prev.end == w.start < w.end  # touching, and not the empty word at the cursor
            and (w.op or after_op)
        ):
            out[-1] = Word(prev.text + w.text, prev.start, w.end)
        else:
            out.append(w if kept or not w.op else Word(w.text, w.start, w.end))
        after_op = w.op and not kept
    return out
