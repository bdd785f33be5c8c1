"""Reading the words after a command's name by its declaration, for execution and completion.

:func:`parse` gives the command its :class:`~otrace.shell.registry.Args` or a one-line
UsageError; :func:`expect` walks the same way up to the word at the cursor and says what
that word is expected to be (an option, an option's value, a redirection's target, which
positional argument).  The declarations are in :mod:`otrace.shell.registry`.

Thread safety: pure functions, any thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otrace.errors import UsageError
from otrace.shell.registry import REDIRECTS, Arg, Args, Command, Option, Redirect
from otrace.shell.tokens import Word, glue


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
    # a command taking redirections sees every redirection operator (to refuse the others)
    words = glue(words, keep=REDIRECTS if cmd.redirects else ())
    args = Args(usage=cmd.usage)
    by_letter = {o.letter: o for o in cmd.options}
    by_long = {o.long: o for o in cmd.options if o.long}
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
        elif (
            not options_done and w.text.startswith("--") and w.text[2:].partition("=")[0] in by_long
        ):
            pending_opt = _long_option(cmd, by_long, args, w.text)
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
        if opt.value and letter in args.opts:  # the second value would silently win
            raise UsageError(f"{cmd.name}: option -{letter} given twice; usage: {cmd.usage}")
        if not opt.value:
            args.opts[letter] = True
            continue
        value = letters[pos + 1 :]
        if not value:
            return opt
        args.opts[letter] = _value(cmd, opt, value)
        return None
    return None


def _long_option(cmd: Command, by_long: dict[str, Option], args: Args, word: str) -> Option | None:
    """Read ``--name`` or ``--name=value``; the option still waiting for its value, if any."""
    name, eq, value = word[2:].partition("=")
    opt = by_long[name]
    if not opt.value:
        args.opts[opt.letter] = True
        return None
    if not eq:
        return opt
    args.opts[opt.letter] = _value(cmd, opt, value)
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
