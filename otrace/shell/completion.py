"""TAB completion of shell input, as plain data a front end adapts.

:func:`complete` takes the text before the cursor and returns :class:`Completion` records
(text to insert, where it starts relative to the cursor, what to display).  It asks the
dispatcher (:func:`otrace.shell.dispatch.read`) what the line is and the command's
declaration (:func:`otrace.shell.parsing.expect`) what the word at the cursor is -- the
same reading that runs the line -- and then completes by what is expected:

* the first word: command names and aliases (in ``/osh`` also names, since a first word that
  is not a command makes the line a ``pr`` expression);
* ``-`` words: the command's declared options (``-x`` letters, and ``--long`` names where
  declared); an option's value: its declared choices;
* after ``<``/``>``: a file; after ``<<``: nothing (the here-doc's end word);
* after a chaining command's ``;``: a line of its own;
* a positional word by the kind of its :class:`~otrace.shell.registry.Arg`: ``path`` and
  ``target`` (a path, relative or absolute, in ``/osh`` or the real filesystem; ``~~``,
  ``~~g`` and ``~~w`` are expanded first and blanks are escaped; in ``/osh/globals`` and
  ``/osh/locals`` a word without ``/`` is a dotted attribute path; hidden ``_`` names come
  after the others), ``file`` (relative names from the work directory), ``python`` (the
  last dotted name of the Python text: ``Cart.a`` -> ``Cart.add_item``), ``param`` and
  ``param_value`` (``True``/``False`` for a switch, else the current value), ``command``,
  ``alias``, ``line`` (the rest is a line of its own: ``repeat``, ``alias NAME ...``),
  ``trace_id`` (the ids of stored contexts), and the declared ``choices`` of any argument;
* pending multi-line code and ``pr`` default expressions: Python names; a unix command's
  words: paths.

Completion never raises (a partial line with a quoting error, or an object whose ``dir``
fails, gives no completions) and looks at no more than :data:`SCAN_LIMIT` names of any one
directory, so a mapping with a million keys completes as fast as a small one.

Nothing here imports a UI library: :mod:`otrace.console` turns the records into
prompt_toolkit completions.

Thread safety: called in the shell thread (the console's prompt runs there), like
:meth:`Session.execute`; it reads the program's objects as they are at that moment.
"""

from __future__ import annotations

from itertools import islice

from otrace.errors import OTraceError
from otrace.shell import dispatch
from otrace.shell.candidates import (
    MAX_RESULTS,
    SCAN_LIMIT,
    Completion,
    complete_file,
    complete_path,
    complete_python,
    escape,
    ordered,
)
from otrace.shell.parsing import Expect, expect
from otrace.shell.registry import REGISTRY, Arg, Command
from otrace.shell.tokens import MAX_LINE, LineError, tokenize


def complete(session, text: str) -> list[Completion]:
    """Completions for ``text`` (the line up to the cursor) in ``session``; never raises."""
    if len(text) > MAX_LINE:
        return []
    try:
        return _complete_line(session, text)[:MAX_RESULTS]
    except Exception:  # completion must never disturb typing
        return []


# -- words ------------------------------------------------------------------------------
def split_words(text: str) -> list[tuple[str, int]] | None:
    """The words of ``text`` as the shell splits them: ``(value, raw start)`` of each.

    The last entry is the word being typed (``("", len(text))`` after a blank).  None if the
    text has an unclosed quote or ends in a lone backslash.
    """
    try:
        return [(w.text, w.start) for w in tokenize(text, partial=True)]
    except LineError:
        return None


def python_start(session, text: str) -> int | None:
    """Where the Python code in an input line starts (for highlighting), or None.

    Pending multi-line code is all Python; so is what follows ``!``, ``pr`` and ``exec``,
    and (in ``/osh``) a line whose first word is not a command.
    """
    if session.pending_code:
        return 0
    try:
        line = dispatch.read(session, text)
    except OTraceError:
        return None
    if line.kind == "python":
        return len(text) - len(text.lstrip())
    cmd = line.command
    if (
        line.kind == "command"
        and cmd is not None
        and cmd.raw
        and cmd.args[:1]
        and cmd.args[0].kind == "python"
        and line.rest
        and line.rest_start >= 0
    ):
        return line.rest_start
    return None


# -- the cases --------------------------------------------------------------------------
def _complete_line(session, text: str) -> list[Completion]:
    if session.pending_code:
        return complete_python(session, text)
    line = dispatch.read(session, text, partial=True)
    cursor = line.cursor
    word = cursor.text if cursor is not None else ""
    start = cursor.start - len(text) if cursor is not None else 0
    if line.kind == "first":
        return _complete_first(session, text, word, start)
    if line.kind == "python":
        return complete_python(session, text)
    if line.kind == "unix":
        return complete_path(session, word, start)  # a unix command's argument
    cmd = line.command
    if cmd is None:
        return []
    if line.chain is not None:
        return _complete_line(session, line.chain)
    if cmd.raw:
        arg = cmd.args[0] if cmd.args else None
        if arg is None or arg.kind not in ("python", "line"):
            return []
        if arg.kind == "python":
            return complete_python(session, text)
        return _complete_line(session, text[line.rest_start :]) if line.rest_start >= 0 else []
    return _complete_expected(session, cmd, text, expect(cmd, line.words), word, start)


def _complete_first(session, text: str, word: str, start: int) -> list[Completion]:
    if "/" in word or word.startswith("~"):
        return complete_path(session, word, start)
    out = [
        Completion(escape(n) + " ", start, n, meta)
        for n, meta in _command_names(session)
        if n.startswith(word)
    ]
    if session.in_osh:
        seen = {c.display for c in out}
        out.extend(c for c in complete_python(session, text) if c.display not in seen)
    return out


def _command_names(session, outside: bool | None = None) -> list[tuple[str, str]]:
    outside = (not session.in_osh) if outside is None else outside
    names = [
        (n, c.summary)
        for n, c in REGISTRY.items()
        if not n.startswith("_") and (c.outside_osh or not outside)
    ]
    names.extend((a, "alias: " + " ".join(v)) for a, v in session.aliases.items())
    return sorted(set(names))


def _complete_expected(
    session, cmd: Command, text: str, exp: Expect, word: str, start: int
) -> list[Completion]:
    if exp.what == "option":
        return _complete_options(cmd, exp, word, start)
    if exp.what == "value":
        assert exp.option is not None
        return _choices(exp.option.choices, word, start)
    if exp.what == "redirect":
        return [] if exp.op == "<<" else complete_file(session, word, start)
    if exp.what != "arg" or exp.arg is None:
        return []
    return _complete_arg(session, exp.arg, exp, text, word, start)


def _complete_arg(
    session, arg: Arg, exp: Expect, text: str, word: str, start: int
) -> list[Completion]:
    kind = arg.kind
    out = _choices(arg.choices, word, start)
    if kind in ("path", "target"):
        out += complete_path(session, word, start)
    elif kind == "file":
        out += complete_file(session, word, start)
    elif kind == "python":
        out += complete_python(session, text)
    elif kind == "param":
        out += _complete_param(session, [], word, start)
    elif kind == "param_value":
        out += _complete_param(session, exp.args.words[:1], word, start)
    elif kind == "command":
        out += [
            Completion(n + " ", start, n, meta)
            for n, meta in _command_names(session, outside=False)
            if n.startswith(word) and n in REGISTRY
        ]
    elif kind == "alias":
        out += [
            Completion(escape(n) + " ", start, n)
            for n in sorted(session.aliases)
            if n.startswith(word)
        ]
    elif kind == "line" and exp.arg_start >= 0:
        out += _complete_line(session, text[exp.arg_start :])
    elif kind == "trace_id":
        out += _complete_trace_id(session, word, start)
    return out


def _choices(choices: tuple[str, ...], word: str, start: int) -> list[Completion]:
    return [
        Completion(escape(c) + ("" if c.endswith("=") else " "), start, c)
        for c in choices
        if c.startswith(word)
    ]


def _complete_options(cmd: Command, exp: Expect, word: str, start: int) -> list[Completion]:
    """``-x`` letters (more letters join the word), and ``--long`` names where declared:
    after ``-`` both, after ``--`` the long ones (with ``=`` their declared choices)."""
    given = set(exp.args.opts)
    if word.startswith("--"):
        name, eq, value = word[2:].partition("=")
        if eq:
            opt = next((o for o in cmd.options if o.long == name), None)
            return [] if opt is None else _choices(opt.choices, value, start + len(name) + 3)
        return [
            Completion(f"--{o.long}" + ("=" if o.choices else " "), start, f"--{o.long}", o.help)
            for o in cmd.options
            if o.long and o.long.startswith(name) and o.letter not in given
        ]
    used = set(word[1:])
    if any(o.value and o.letter in used for o in cmd.options):
        return []  # the value follows in this word
    out = [
        Completion(word + o.letter + " ", start, "-" + o.letter, o.help)
        for o in cmd.options
        if o.letter not in used and o.letter not in given
    ]
    if word == "-":
        out += _complete_options(cmd, exp, "--", start)
    return out


def _complete_param(session, args: list[str], word: str, start: int) -> list[Completion]:
    params = session.params
    if not args:
        return [
            Completion(n + " ", start, n, params.spec(n).help)
            for n in params.names()
            if n.startswith(word)
        ]
    try:
        spec = params.spec(args[0])
    except OTraceError:
        return []
    if spec.type is bool:
        return [
            Completion(v, start, v) for v in ("True", "False") if v.lower().startswith(word.lower())
        ]
    current = "" if args[0] == "password" else str(getattr(params, args[0], ""))
    if current and current.startswith(word) and current != word:
        return [Completion(escape(current), start, current, "current value")]
    return []


def _complete_trace_id(session, word: str, start: int) -> list[Completion]:
    ids = islice(list(session.store.all), SCAN_LIMIT)  # a snapshot: contexts come and go
    return [
        Completion(escape(i) + " ", start, i)
        for i in ordered([i for i in ids if i.startswith(word)])
    ]
