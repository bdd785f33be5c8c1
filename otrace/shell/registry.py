"""Declared commands: one function each, whose declaration gives parsing, usage, help,
completion and the docs.

Declaring a command
-------------------
A command is a function ``fn(sh, args)`` (``sh``: the :class:`~otrace.shell.session.Session`,
``args``: :class:`Args`) decorated with :func:`command`::

    @command(
        "unpatch",
        args=(Arg("class.method|function|*", "target", optional=True),),
        redirects=(">",),
    )
    def unpatch(sh, args: Args) -> None:
        \"\"\"Undo a patch (first line: the summary in 'help *').

        The rest of the docstring is the help text.
        \"\"\"

What can be declared (all keywords):

* ``options``: :class:`Option` switches ``-x`` (with ``value=`` they take a value;
  ``choices=`` and ``convert=`` check it; ``long=`` also accepts ``--name`` / ``--name=V``).  Options come before the positional words;
  ``--`` ends them.
* ``args``: the positional words, as :class:`Arg` (name shown in the usage, a *kind* that
  says how TAB completes it -- see :data:`KINDS` -- and ``optional``/``repeat``).  More
  words than declared, or a missing required one, is a usage error.
* ``redirects``: which of ``<`` (read a file; alone: the front end's here-doc), ``<<WORD``
  (the lines that follow, up to WORD) and ``>`` (write a file) the command takes.  Only
  then are unquoted ``<``/``>`` operators for it; they reach the command as
  ``args.stdin``/``args.stdout`` (:class:`Redirect`, see :mod:`otrace.shell.redirect`).
* ``aliases``: ``{"name": "command words"}``, built-in aliases that expand to this command.
* ``raw=True``: the command takes the rest of the line as typed (``args.raw``); ``prefix``
  is a character that, starting a line, runs it (``!`` for ``exec``).
* ``chains=True``: ``cmd ...; other command`` runs the other command if this one worked.
* ``outside_osh=True``: the command also runs when the cwd is a real directory (other
  words there are unix commands).
* ``parse_options=False``: every word is positional (``alias``, ``cdls`` pass them on);
  ``dash_words``: :class:`DashWords`, option-like words the command reads itself.

From the declaration :func:`otrace.shell.parsing.parse` (execution) and
:func:`otrace.shell.parsing.expect` (completion: what is expected at the cursor) read a
line's words the same way, and :attr:`Command.usage`,
:meth:`Command.help_text` and ``docs/commands.rst`` are written; nothing is written by hand
but the docstring.  Unknown commands are reported with the nearest names.

Thread safety: commands are declared at import; the registry is read-only afterwards.
"""

from __future__ import annotations

import difflib
import shlex
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from otrace.errors import UsageError
from otrace.shell.tokens import OPERATORS, tokenize

#: What a positional word is, which decides how TAB completes it.
KINDS = {
    "path": "a path in /osh or the real filesystem (dotted names in /osh/globals)",
    "target": "a function, method, class or module (a path)",
    "python": "Python code",
    "file": "a real file; relative names are from the work directory ~~w",
    "param": "a parameter name",
    "param_value": "a value for the parameter named before it",
    "command": "a command name",
    "alias": "an alias name",
    "line": "a command line of its own",
    "trace_id": "a trace context id (globs allowed)",
    "text": "free text (completion offers the declared choices)",
}
REDIRECTS = ("<", "<<", ">")


@dataclass(frozen=True)
class Option:
    """A switch ``-letter``; with ``value`` it takes the next word (checked by ``convert``)."""

    letter: str
    help: str
    value: str = ""  # name of the value in the usage line; empty for a flag
    choices: tuple[str, ...] = ()
    convert: Callable[[str], Any] | None = None
    unsafe: str = ""  # why safe mode refuses this option (see otrace.shell.safety)
    long: str = ""  # also accepted as --long / --long=VALUE (stored under the letter)


@dataclass(frozen=True)
class Arg:
    """A positional word: ``name`` as shown in the usage, ``kind`` one of :data:`KINDS`."""

    name: str
    kind: str = "path"
    optional: bool = False
    repeat: bool = False  # any number of words (the last Arg only)
    choices: tuple[str, ...] = ()  # words completion offers besides the kind's

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Arg {self.name!r}: unknown kind {self.kind!r}")

    @property
    def usage(self) -> str:
        text = self.name + (" ..." if self.repeat else "")
        return f"[{text}]" if self.optional else text


@dataclass(frozen=True)
class DashWords:
    """Words starting with ``-`` that are not options but the command's own (``ls -.``)."""

    usage: str
    match: Callable[[str], bool]


@dataclass(frozen=True)
class Redirect:
    """A redirection: ``op`` ``<``, ``<<`` or ``>``; ``target`` a file or here-doc end word."""

    op: str
    target: str


@dataclass
class Args:
    """What a command gets: options by letter, positional words, redirections, raw text."""

    opts: dict[str, Any] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    raw: str = ""
    extra: list[str] = field(default_factory=list)  # DashWords, in order
    stdin: Redirect | None = None
    stdout: Redirect | None = None
    usage: str = ""

    def flag(self, letter: str) -> bool:
        return bool(self.opts.get(letter))


@dataclass
class Command:
    name: str
    func: Callable[[Any, Args], None]
    options: tuple[Option, ...] = ()
    args: tuple[Arg, ...] = ()
    redirects: tuple[str, ...] = ()
    aliases: dict[str, list[str]] = field(default_factory=dict)
    raw: bool = False
    prefix: str = ""
    chains: bool = False
    outside_osh: bool = False
    parse_options: bool = True
    dash_words: DashWords | None = None
    unsafe: str = ""  # why safe mode refuses the command (see otrace.shell.safety)
    safe_check: Callable[[Any, Args], None] | None = None  # safe-mode check of the arguments

    def __post_init__(self) -> None:
        for i, arg in enumerate(self.args):
            if arg.repeat and i != len(self.args) - 1:
                raise ValueError(f"{self.name}: only the last argument may repeat")
            if not arg.optional and any(a.optional for a in self.args[:i]):
                raise ValueError(f"{self.name}: a required argument after an optional one")
        if set(self.redirects) - set(REDIRECTS):
            raise ValueError(f"{self.name}: redirects are some of {REDIRECTS}")
        if self.raw and (self.options or self.redirects):
            raise ValueError(f"{self.name}: a raw command takes the line as typed")

    @property
    def doc(self) -> str:
        return (self.func.__doc__ or "").strip()

    @property
    def summary(self) -> str:
        return self.doc.splitlines()[0] if self.doc else ""

    @property
    def usage(self) -> str:
        """The synopsis, made from the declaration."""
        parts = [self.name]
        flags = "".join(o.letter for o in self.options if not o.value)
        if flags:
            parts.append(f"[-{flags}]")
        parts += [
            f"[-{o.letter} {o.value}{f'|--{o.long} {o.value}' if o.long else ''}]"
            for o in self.options
            if o.value
        ]
        if self.dash_words is not None:
            parts.append(f"[{self.dash_words.usage}]")
        parts += [a.usage for a in self.args if not a.optional]
        optional = ""  # optional arguments nest: each needs the one before it
        for arg in reversed([a for a in self.args if a.optional]):
            text = arg.name + (" ..." if arg.repeat else "")
            optional = f"[{text}{' ' + optional if optional else ''}]"
        if optional:
            parts.append(optional)
        ins = [shown for op, shown in (("<", "< file"), ("<<", "<<EOF")) if op in self.redirects]
        if ins:
            parts.append(f"[{' | '.join(ins)}]")
        if ">" in self.redirects:
            parts.append("[> file]")
        if self.chains:
            parts.append("[; command]")
        text = " ".join(parts)
        if self.prefix and self.args:
            text += f"   (also {self.prefix}{self.args[0].name})"
        return text

    @property
    def max_words(self) -> int | None:
        if self.args and self.args[-1].repeat:
            return None
        return len(self.args)

    def help_text(self) -> str:
        lines = [self.usage, ""]
        body = self.doc.splitlines()[1:]
        lines.extend(textwrap.dedent("\n".join(body)).strip("\n").splitlines() or [self.summary])
        if self.summary and body:
            lines.insert(2, self.summary)
        if self.options:
            lines += ["", "Options:"]
            for opt in self.options:
                arg = f" {opt.value}" if opt.value else ""
                choice = f" ({'|'.join(opt.choices)})" if opt.choices else ""
                name = f"-{opt.letter}" + (f", --{opt.long}" if opt.long else "")
                lines.append(f"  {name}{arg:<10} {opt.help}{choice}")
        if self.aliases:
            lines += ["", "Aliases:"]
            lines += [f"  {a:<10} {render_words(w)}" for a, w in sorted(self.aliases.items())]
        return "\n".join(lines)


# The command declarations, filled by @command when otrace.shell.commands is imported and
# read-only after that: code, not state, so every runtime and session shares it.
REGISTRY: dict[str, Command] = {}


def command(
    name: str,
    *,
    options: tuple[Option, ...] = (),
    args: tuple[Arg, ...] = (),
    redirects: tuple[str, ...] = (),
    aliases: dict[str, str] | None = None,
    raw: bool = False,
    prefix: str = "",
    chains: bool = False,
    outside_osh: bool = False,
    parse_options: bool = True,
    dash_words: DashWords | None = None,
    unsafe: str = "",
    safe_check: Callable[[Any, Args], None] | None = None,
) -> Callable[[Callable[[Any, Args], None]], Callable[[Any, Args], None]]:
    """Declare a shell command (decorator); see the module docstring.

    ``unsafe`` says why safe mode refuses the command; ``safe_check(sh, args)`` refuses some
    of its uses (both enforced by :func:`otrace.shell.safety.check`, with the options'
    ``unsafe`` and the ``<``/``>`` redirections).
    """
    alias_words = {a: [w.text for w in tokenize(text)] for a, text in (aliases or {}).items()}
    for alias, words in alias_words.items():
        if not words or words[0] != name:
            raise ValueError(f"alias {alias!r} of {name} must start with {name}")

    def register(func: Callable[[Any, Args], None]) -> Callable[[Any, Args], None]:
        if name in REGISTRY:
            raise RuntimeError(f"command {name!r} declared twice")
        taken = [a for a in alias_words if any(a in c.aliases for c in REGISTRY.values())]
        if taken:
            raise RuntimeError(f"alias {taken[0]!r} declared twice")
        REGISTRY[name] = Command(
            name,
            func,
            options=options,
            args=args,
            redirects=redirects,
            aliases=alias_words,
            raw=raw,
            prefix=prefix,
            chains=chains,
            outside_osh=outside_osh,
            parse_options=parse_options,
            dash_words=dash_words,
            unsafe=unsafe,
            safe_check=safe_check,
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


def render_words(words: list[str]) -> str:
    """Words as they would be typed (quoted where needed; operators bare)."""
    return " ".join(w if w in OPERATORS else shlex.quote(w) for w in words)


def builtin_aliases() -> dict[str, list[str]]:
    """Every declared alias: name -> words."""
    return {a: list(w) for c in REGISTRY.values() for a, w in c.aliases.items()}
