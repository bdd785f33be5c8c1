"""Declared commands: one function each, whose declaration gives parsing, help and completion.

A command is a function ``fn(sh, args)`` decorated with :func:`command`.  Its docstring is
its help (first line: the summary shown by ``help *``); ``usage`` is the synopsis; ``options``
declare the ``-x`` switches.  From that one place the parser (:func:`parse`), ``help``, TAB
completion and ``docs/commands.rst`` are made.  Unknown commands are reported with the
nearest names.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from otrace.errors import UsageError


@dataclass(frozen=True)
class Option:
    """A switch ``-letter``; with ``value`` it takes the next word (checked by ``convert``)."""

    letter: str
    help: str
    value: str = ""  # name of the value in the usage line; empty for a flag
    choices: tuple[str, ...] = ()
    convert: Callable[[str], Any] | None = None
    unsafe: str = ""  # why safe mode refuses this option (see otrace.shell.safety)


@dataclass
class Args:
    """What a command gets: options by letter, positional words, and the raw rest of line."""

    opts: dict[str, Any] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    raw: str = ""
    extra: list[str] = field(default_factory=list)  # words kept for the command (ls -. forms)

    def flag(self, letter: str) -> bool:
        return bool(self.opts.get(letter))


@dataclass
class Command:
    name: str
    func: Callable[[Any, Args], None]
    usage: str
    options: tuple[Option, ...] = ()
    raw: bool = False  # takes the rest of the line as typed (pr, exec)
    max_words: int | None = None
    complete: str = "path"  # what words complete to: path, param, command, alias, none
    outside_osh: bool = False  # also runs when the cwd is a real directory
    keep_dash_words: Callable[[str], bool] | None = None
    unsafe: str = ""  # why safe mode refuses the command (see otrace.shell.safety)
    safe_check: Callable[[Any, Args], None] | None = None  # safe-mode check of the arguments

    @property
    def doc(self) -> str:
        return (self.func.__doc__ or "").strip()

    @property
    def summary(self) -> str:
        return self.doc.splitlines()[0] if self.doc else ""

    def help_text(self) -> str:
        lines = [f"{self.usage}", ""]
        body = self.doc.splitlines()[1:]
        import textwrap

        lines.extend(textwrap.dedent("\n".join(body)).strip("\n").splitlines() or [self.summary])
        if self.summary and body:
            lines.insert(2, self.summary)
        if self.options:
            lines.append("")
            lines.append("Options:")
            for opt in self.options:
                arg = f" {opt.value}" if opt.value else ""
                choice = f" ({'|'.join(opt.choices)})" if opt.choices else ""
                lines.append(f"  -{opt.letter}{arg:<10} {opt.help}{choice}")
        return "\n".join(lines)


# The command declarations, filled by @command when otrace.shell.commands is imported and
# read-only after that: code, not state, so every runtime and session shares it.
REGISTRY: dict[str, Command] = {}


def command(
    name: str,
    usage: str,
    *,
    options: tuple[Option, ...] = (),
    raw: bool = False,
    max_words: int | None = None,
    complete: str = "path",
    outside_osh: bool = False,
    keep_dash_words: Callable[[str], bool] | None = None,
    unsafe: str = "",
    safe_check: Callable[[Any, Args], None] | None = None,
):
    """Declare a shell command (decorator).

    ``unsafe`` says why safe mode refuses the command; ``safe_check(sh, args)`` refuses
    some of its uses (both are enforced by :func:`otrace.shell.safety.check`).
    """

    def register(func: Callable[[Any, Args], None]) -> Callable[[Any, Args], None]:
        if name in REGISTRY:
            raise RuntimeError(f"command {name!r} declared twice")
        REGISTRY[name] = Command(
            name,
            func,
            usage,
            options,
            raw,
            max_words,
            complete,
            outside_osh,
            keep_dash_words,
            unsafe,
            safe_check,
        )
        return func

    return register


def lookup(name: str) -> Command:
    """The command called ``name``; UsageError naming the nearest commands if unknown."""
    try:
        return REGISTRY[name]
    except KeyError:
        public = [n for n in REGISTRY if not n.startswith("_")]
        near = difflib.get_close_matches(name, public, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(near)}?" if near else "; type 'help' for the list"
        raise UsageError(f"Unknown command '{name}'{hint}") from None


def parse(cmd: Command, words: list[str]) -> Args:
    """Parse option words (up to the first non-option word or ``--``) for ``cmd``."""
    args = Args()
    by_letter = {o.letter: o for o in cmd.options}
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            i += 1
            break
        if not word.startswith("-") or word == "-" or _is_number(word):
            break
        if cmd.keep_dash_words and cmd.keep_dash_words(word):
            args.extra.append(word)
            i += 1
            continue
        letters = word[1:]
        for pos, letter in enumerate(letters):
            opt = by_letter.get(letter)
            if opt is None:
                raise UsageError(f"{cmd.name}: invalid option -{letter}; usage: {cmd.usage}")
            if not opt.value:
                args.opts[letter] = True
                continue
            value = letters[pos + 1 :]
            if not value:
                i += 1
                if i >= len(words):
                    raise UsageError(f"{cmd.name}: option -{letter} needs {opt.value}")
                value = words[i]
            if opt.choices and value not in opt.choices:
                raise UsageError(
                    f"{cmd.name}: -{letter} must be one of {', '.join(opt.choices)}, not {value!r}"
                )
            if opt.convert is not None:
                try:
                    value = opt.convert(value)
                except (TypeError, ValueError) as exc:
                    raise UsageError(f"{cmd.name}: bad value for -{letter}: {exc}") from None
            args.opts[letter] = value
            break
        i += 1
    args.words = words[i:]
    if cmd.max_words is not None and len(args.words) > cmd.max_words:
        raise UsageError(f"{cmd.name}: too many arguments; usage: {cmd.usage}")
    return args


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True
