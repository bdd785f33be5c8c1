"""What an input line means, and running it: one reading for execution and completion.

:func:`read` turns a line (or, for completion, the part before the cursor) into a
:class:`Line`:

1. a line starting with a command's ``prefix`` (``!``) runs that command on the rest;
2. otherwise the line is split by :func:`otrace.shell.tokens.tokenize` and an alias in
   the first word is expanded;
3. a command declared ``chains`` ends at an unquoted ``;`` and the rest is a line of its own;
4. below ``/osh/web/<user>`` a line that is not a navigation command is JavaScript
   (the hidden command ``_web``);
5. a first word that is not a command makes the line a ``pr`` expression in ``/osh`` and a
   unix command elsewhere; outside ``/osh`` only commands declared ``outside_osh`` run.

:func:`run` carries a line out; :func:`run_command` parses a command's words with
:func:`otrace.shell.parsing.parse` and calls it.  :mod:`otrace.shell.completion` asks
:func:`read` and :func:`otrace.shell.parsing.expect` what the cursor is on.

Thread safety: the session's thread (see :class:`otrace.shell.session.Session`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from otrace.errors import UsageError
from otrace.shell import safety
from otrace.shell.output import Result
from otrace.shell.parsing import parse
from otrace.shell.registry import REGISTRY, Args, Command, lookup
from otrace.shell.tokens import OPERATORS, LineError, Word, check_line, glue, tokenize

if TYPE_CHECKING:
    from otrace.shell.session import Session

#: Commands that keep their meaning below /osh/web/<user> (everything else is JavaScript).
WEB_LOCAL = frozenset(
    {
        "ls",
        "cd",
        "cdls",
        "pushd",
        "popd",
        "swapd",
        "pwd",
        "help",
        "alias",
        "quit",
        "repeat",
        "set",
        "remotelog",
    }
)


@dataclass
class Line:
    """One reading of an input line.

    ``kind``: ``empty``; ``first`` (completion: the first word is being typed); ``python``
    (a ``pr`` expression: ``text``); ``unix`` (``text`` for bash); ``command``.
    For a command: ``name`` is the first word typed (a command or an alias), ``words`` the
    words after the command's name (alias words first), ``rest`` the raw text after it and
    ``rest_start`` where that begins in the line (-1 after an alias), ``chain`` the line
    after ``;`` (for completion: ending with the word being typed).
    """

    kind: str
    text: str = ""
    command: Command | None = None
    name: str = ""
    words: list[Word] = field(default_factory=list)
    rest: str = ""
    rest_start: int = -1
    chain: str | None = None
    cursor: Word | None = None  # completion: the word being typed


def prefixes() -> dict[str, Command]:
    return {c.prefix: c for c in REGISTRY.values() if c.prefix}


def read(session: Session, text: str, partial: bool = False) -> Line:
    """Read ``text``; with ``partial`` it ends at the cursor (its last word is unfinished).

    :raises LineError: a line the tokenizer refuses (for execution: only outside /osh, where
        it cannot be a Python expression instead).
    """
    check_line(text)
    stripped = text.strip()
    lead = len(text) - len(text.lstrip())
    if not partial and (not stripped or stripped.startswith("#")):
        return Line("empty")
    prefixed = prefixes().get(text[lead : lead + 1])
    if prefixed is not None:
        rest = text[lead + 1 :]
        return Line(
            "command",
            stripped,
            prefixed,
            prefixed.name,
            rest=rest.strip(),
            rest_start=lead + 1 + len(rest) - len(rest.lstrip()),
        )
    try:
        tokens = tokenize(text, operators=True, partial=partial)
    except LineError as exc:
        if partial:
            raise
        head = stripped.split(None, 1)[0]
        if head in REGISTRY or head in session.aliases:  # cd "abc: cd's error, not Python's
            raise UsageError(f"{head}: {exc}") from None
        if not session.in_osh:
            raise UsageError(f"Cannot split line: {exc}") from None
        return Line("python", stripped)  # Python with an odd quote: pr says what is wrong
    if not tokens:
        return Line("empty")
    first = glue(tokens)[0]
    after = [w for w in tokens[1:] if w.start >= first.end]  # tokens[0] is in first
    if partial and not after:
        return Line("first", text, cursor=tokens[-1])
    name = first.text
    rest = text[first.end :]
    rest_start = first.end + len(rest) - len(rest.lstrip())
    rest = rest.strip()
    words = after
    if name in session.aliases:
        alias = session.aliases[name]
        if partial:  # the words typed keep their places; markers stay unexpanded
            expanded = alias
            words = [_alias_word(t) for t in alias[1:]] + after
        else:
            expanded = session.expand_alias(name, [w.text for w in glue(after)])
            words = [_alias_word(t) for t in expanded[1:]]
        stripped = " ".join(expanded)
        rest, rest_start = " ".join(expanded[1:]), -1
        command_name = expanded[0] if expanded else ""
    else:
        command_name = name
    cmd = REGISTRY.get(command_name)
    line = Line("command", stripped, cmd, name, words, rest, rest_start)
    line.cursor = tokens[-1] if partial else None
    if cmd is not None and cmd.chains:
        _split_chain(line, text)
        if line.chain is not None and not partial:
            return line  # the chain's head runs where the operator said, even on the web
    if (
        session.cwd[:2] == ("osh", "web")
        and len(session.cwd) > 2
        and command_name not in WEB_LOCAL
        and "_web" in REGISTRY
    ):
        return Line("command", stripped, REGISTRY["_web"], "_web", rest=stripped)
    if cmd is None or (not session.in_osh and not cmd.outside_osh):
        kind = "python" if session.in_osh and cmd is None else "unix"
        return Line(kind, stripped, cursor=line.cursor)
    return line


def _alias_word(text: str) -> Word:
    return Word(text, op=text in OPERATORS)


def _split_chain(line: Line, text: str) -> None:
    """Cut ``line`` at its first ``;`` operator; what follows becomes ``line.chain``."""
    for i, w in enumerate(line.words):
        if w.op and w.text == ";":
            if w.end >= 0:
                line.chain = text[w.end :]
            else:  # from an alias; words typed after it (completion) keep their raw text
                tail = line.words[i + 1 :]
                aliased = [t.text for t in tail if t.start < 0]
                typed = [t for t in tail if t.start >= 0]
                line.chain = " ".join(aliased)
                if typed:
                    line.chain += " " + text[typed[0].start :]
            line.words = line.words[:i]
            return


def run(session: Session, line: Line, result: Result) -> None:
    """Carry out ``line`` (from :func:`read`), writing to ``result``."""
    if line.kind == "empty":
        return
    if line.kind == "python":
        run_command(session, "pr", line.text, None, result)
        return
    if line.kind == "unix":
        session.run_unix(line.text, result)
        return
    assert line.command is not None
    if line.chain is None:
        _call(session, line.command, line.rest, line.words, result)
        return
    before = len(result.chunks)
    _call(session, line.command, line.rest, line.words, result)
    if any(s == "err" for s, _, _ in result.chunks[before:]):
        return  # the cd failed: do not run the rest where the operator did not mean
    if line.chain.strip():
        session.run_line(line.chain, result)


def run_command(
    session: Session, name: str, rest: str, words: list[str] | None, result: Result
) -> None:
    """Parse and run command ``name`` with ``rest`` (raw text) / ``words`` (split)."""
    cmd = lookup(name)
    if words is not None:
        split = [Word(w) for w in words]
    else:  # a raw command takes the text as it is (pr of Python with an odd quote)
        split = [] if cmd.raw else tokenize(rest, operators=True)
    _call(session, cmd, rest, split, result)


def _call(session: Session, cmd: Command, rest: str, words: list[Word], result: Result) -> None:
    if cmd.raw:
        args = Args(raw=rest, words=[w.text for w in words], usage=cmd.usage)
    else:
        args = parse(cmd, words)
        args.raw = rest
    safety.check(session, cmd, args)  # safe mode: the one capability check
    previous, session.out = session.out, result
    try:
        cmd.func(session, args)
    finally:
        session.out = previous
