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
  ``choices=`` and ``convert=`` check it).  Options come before the positional words;
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

From the declaration :func:`parse` (execution) and :func:`expect` (completion: what is
expected at the cursor) read a line's words the same way, and :attr:`Command.usage`,
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
from otrace.shell.tokens import OPERATORS, Word, glue, tokenize

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
        parts += [f"[-{o.letter} {o.value}]" for o in self.options if o.value]
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
                lines.append(f"  -{opt.letter}{arg:<10} {opt.help}{choice}")
        if self.aliases:
            lines += ["", "Aliases:"]
            lines += [f"  {a:<10} {render_words(w)}" for a, w in sorted(self.aliases.items())]
        return "\n".join(lines)


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
) -> Callable[[Callable[[Any, Args], None]], Callable[[Any, Args], None]]:
    """Declare a shell command (decorator); see the module docstring."""
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


# -- reading the words after a command name ----------------------------------------------
@dataclass
class Expect:
    """What the word at the cursor is (from :func:`expect`).

    ``what`` is ``option`` (a ``-x`` word), ``value`` (the value of ``option``),
    ``redirect`` (the file or end word after ``op``), ``arg`` (the positional ``arg``; its
    first word started at ``arg_start`` in the line, -1 if not typed), or ``nothing``.
    """

    what: str
    args: Args
    option: Option | None = None
    op: str = ""
    arg: Arg | None = None
    arg_start: int = -1


def parse(cmd: Command, words: list[Word] | list[str]) -> Args:
    """Read the words after ``cmd``'s name; UsageError for what the declaration refuses."""
    args, _ = _scan(cmd, _as_words(words), final=True)
    return args


def expect(cmd: Command, words: list[Word]) -> Expect:
    """What the last of ``words`` (the one being typed) is expected to be; may raise."""
    _, found = _scan(cmd, words, final=False)
    assert found is not None
    return found


def _as_words(words: list[Word] | list[str]) -> list[Word]:
    return [w if isinstance(w, Word) else Word(w) for w in words]


def _scan(cmd: Command, words: list[Word], final: bool) -> tuple[Args, Expect | None]:
    words = glue(words, keep=cmd.redirects)
    args = Args(usage=cmd.usage)
    by_letter = {o.letter: o for o in cmd.options}
    options_done = not cmd.parse_options
    pending_opt: Option | None = None
    pending_op = ""
    positional: list[Word] = []
    done = words if final else words[:-1]
    for w in done:
        if pending_op:
            _set_redirect(cmd, args, pending_op, w.text)
            pending_op = ""
        elif w.op:
            if w.text not in cmd.redirects:
                raise UsageError(f"{cmd.name}: cannot redirect with {w.text}; usage: {cmd.usage}")
            pending_op = w.text
        elif pending_opt is not None:
            args.opts[pending_opt.letter] = _value(cmd, pending_opt, w.text)
            pending_opt = None
        elif not options_done and w.text == "--":
            options_done = True
        elif not options_done and _is_option(w.text):
            if cmd.dash_words is not None and cmd.dash_words.match(w.text):
                args.extra.append(w.text)
            else:
                pending_opt = _options(cmd, by_letter, args, w.text)
        else:
            options_done = True
            positional.append(w)
    args.words = [w.text for w in positional]
    if not final:
        return args, _expect(
            cmd, args, words[-1], positional, options_done, pending_opt, pending_op
        )
    if pending_opt is not None:
        raise UsageError(f"{cmd.name}: option -{pending_opt.letter} needs {pending_opt.value}")
    if pending_op:
        _set_redirect(cmd, args, pending_op, "")
    limit = cmd.max_words
    if limit is not None and len(args.words) > limit:
        raise UsageError(f"{cmd.name}: too many arguments; usage: {cmd.usage}")
    required = [a for a in cmd.args if not a.optional]
    if len(args.words) < len(required):
        missing = required[len(args.words)].name
        raise UsageError(f"{cmd.name}: missing {missing}; usage: {cmd.usage}")
    return args, None


def _expect(
    cmd: Command,
    args: Args,
    word: Word,
    positional: list[Word],
    options_done: bool,
    pending_opt: Option | None,
    pending_op: str,
) -> Expect:
    if pending_op:
        return Expect("redirect", args, op=pending_op)
    if pending_opt is not None:
        return Expect("value", args, option=pending_opt)
    if not options_done and word.text.startswith("-") and cmd.options:
        return Expect("option", args)
    index = len(positional)
    if cmd.args and cmd.args[-1].repeat:
        index = min(index, len(cmd.args) - 1)
    if index >= len(cmd.args):
        return Expect("nothing", args)
    start = positional[index].start if index < len(positional) else word.start
    return Expect("arg", args, arg=cmd.args[index], arg_start=start)


def _options(cmd: Command, by_letter: dict[str, Option], args: Args, word: str) -> Option | None:
    """Read one word of options; the valued option still waiting for its value, if any."""
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
            return opt
        args.opts[letter] = _value(cmd, opt, value)
        return None
    return None


def _value(cmd: Command, opt: Option, value: str) -> Any:
    if opt.choices and value not in opt.choices:
        raise UsageError(
            f"{cmd.name}: -{opt.letter} must be one of {', '.join(opt.choices)}, not {value!r}"
        )
    if opt.convert is not None:
        try:
            return opt.convert(value)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{cmd.name}: bad value for -{opt.letter}: {exc}") from None
    return value


def _set_redirect(cmd: Command, args: Args, op: str, target: str) -> None:
    if op == "<<" and not target:
        target = "EOF"
    slot = "stdout" if op == ">" else "stdin"
    if getattr(args, slot) is not None:
        raise UsageError(
            f"{cmd.name}: more than one {'output' if op == '>' else 'input'} redirection"
        )
    setattr(args, slot, Redirect(op, target))


def _is_option(word: str) -> bool:
    return word.startswith("-") and word != "-" and not _is_number(word)


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True
