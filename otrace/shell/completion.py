"""TAB completion of shell input, as plain data a front end adapts.

:func:`complete` takes the text before the cursor and returns :class:`Completion` records
(text to insert, where it starts relative to the cursor, what to display):

* the first word: command names and aliases (in ``/osh`` also names, since a first word that
  is not a command makes the line a ``pr`` expression);
* ``-`` words after a command: that command's declared options (and the choices of an
  option's value);
* ``set NAME``: parameter names, then ``True``/``False`` for a bool parameter;
* ``help CMD``: command names; ``alias NAME``: alias names; ``repeat ...``: a whole line;
* ``pr``/``exec``/``!`` lines, pending multi-line code and ``pr`` default expressions: the
  last dotted name of the Python text (``Cart.a`` -> ``Cart.add_item``);
* otherwise a path, relative or absolute, in ``/osh`` or the real filesystem; ``~~``, ``~~g``
  and ``~~w`` are expanded first and blanks are escaped.  In ``/osh/globals`` and
  ``/osh/locals`` a word without ``/`` is a dotted attribute path.  Hidden (``_``) names are
  offered after the others.

Completion never raises (a partial line with a quoting error, or an object whose ``dir``
fails, gives no completions) and looks at no more than :data:`SCAN_LIMIT` names of any one
directory, so a mapping with a million keys completes as fast as a small one.

Nothing here imports a UI library: :mod:`otrace.console` turns the records into
prompt_toolkit completions.

Thread safety: called in the shell thread (the console's prompt runs there), like
:meth:`Session.execute`; it reads the program's objects as they are at that moment.
"""

from __future__ import annotations

import builtins
import re
import types
from dataclasses import dataclass
from itertools import islice
from typing import Any

from otrace.errors import OTraceError
from otrace.shell.registry import REGISTRY, Command
from otrace.vfs import FsPath, as_dir

SCAN_LIMIT = 20_000  # names looked at in one directory / namespace
MAX_RESULTS = 500  # completions returned at most
_DOTTED_MOUNTS = (("osh", "globals"), ("osh", "locals"))
_PYTHON_COMMANDS = frozenset({"pr", "exec"})
_TAIL = re.compile(r"[\w.]*\Z")
_ESCAPE = re.compile(r"([\s'\"\\])")


@dataclass(frozen=True)
class Completion:
    """One candidate.

    :param text: what replaces the text from ``start`` to the cursor.
    :param start: where the replaced text begins, relative to the cursor (0 or negative).
    :param display: what a menu shows (default: ``text``).
    :param meta: a short description shown next to it (an option's help).
    """

    text: str
    start: int
    display: str = ""
    meta: str = ""


def complete(session, text: str) -> list[Completion]:
    """Completions for ``text`` (the line up to the cursor) in ``session``; never raises."""
    try:
        return _complete_line(session, text)[:MAX_RESULTS]
    except Exception:  # completion must never disturb typing
        return []


# -- words ------------------------------------------------------------------------------
def split_words(text: str) -> list[tuple[str, int]] | None:
    """Split like the shell does (``shlex`` rules): ``(value, raw start)`` of each word.

    The last entry is the word being typed (``("", len(text))`` after a blank).  None if the
    text has an unclosed quote or ends in a lone backslash.
    """
    words: list[tuple[str, int]] = []
    cur: str | None = None
    start = 0
    quote = ""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"' and i + 1 < n and text[i + 1] in '\\"':
                cur = (cur or "") + text[i + 1]
                i += 1
            else:
                cur = (cur or "") + c
        elif c.isspace():
            if cur is not None:
                words.append((cur, start))
                cur = None
        else:
            if cur is None:
                cur, start = "", i
            if c == "\\":
                if i + 1 >= n:
                    return None
                cur += text[i + 1]
                i += 1
            elif c in "'\"":
                quote = c
            else:
                cur += c
        i += 1
    if quote:
        return None
    words.append(("", n) if cur is None else (cur, start))
    return words


def escape(word: str) -> str:
    """Quote a word so the shell splits it back to itself (blanks become ``\\ ``)."""
    return _ESCAPE.sub(r"\\\1", word)


def python_start(session, text: str) -> int | None:
    """Where the Python code in an input line starts (for highlighting), or None.

    Pending multi-line code is all Python; so is what follows ``!``, ``pr`` and ``exec``,
    and (in ``/osh``) a line whose first word is not a command.
    """
    if session.pending_code:
        return 0
    lead = len(text) - len(text.lstrip())
    if text[lead : lead + 1] == "!":
        return lead + 1
    words = split_words(text)
    if words is None:
        return lead if session.in_osh else None
    first = words[0][0]
    if not first:
        return None
    name = _command_name(session, first)
    if name is None:
        return lead if session.in_osh else None
    if name in _PYTHON_COMMANDS and len(words) > 1:
        return words[1][1]
    return None


def _command_name(session, word: str) -> str | None:
    """The command a first word runs (through an alias), or None."""
    if word in REGISTRY:
        return word
    expansion = session.aliases.get(word)
    if expansion and expansion[0] in REGISTRY:
        return expansion[0]
    return None


# -- the cases --------------------------------------------------------------------------
def _complete_line(session, text: str) -> list[Completion]:
    if session.pending_code:
        return _complete_python(session, text)
    stripped = text.lstrip()
    words = split_words(text)
    if words is None:
        return []  # quoting error
    if stripped.startswith("!"):
        return _complete_python(session, text)
    word, raw_start = words[-1]
    start = raw_start - len(text)
    if len(words) == 1:
        return _complete_first(session, text, word, start)
    first = words[0][0]
    name = _command_name(session, first)
    if name is None:
        if session.in_osh:
            return _complete_python(session, text)  # a pr expression
        return _complete_path(session, word, start)  # a unix command's argument
    cmd = REGISTRY[name]
    if not session.in_osh and not cmd.outside_osh:
        return _complete_path(session, word, start)
    if name in _PYTHON_COMMANDS:
        return _complete_python(session, text)
    args = [w for w, _ in words[1:-1]]
    if first != name:  # an alias: its own words come first (show = view -i)
        args = session.aliases[first][1:] + args
    return _complete_args(session, cmd, text, words, args, word, start)


def _complete_first(session, text: str, word: str, start: int) -> list[Completion]:
    if "/" in word or word.startswith("~"):
        return _complete_path(session, word, start)
    out = [
        Completion(escape(n) + " ", start, n, meta)
        for n, meta in _command_names(session)
        if n.startswith(word)
    ]
    if session.in_osh:
        seen = {c.display for c in out}
        out.extend(c for c in _complete_python(session, text) if c.display not in seen)
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


def _complete_args(
    session,
    cmd: Command,
    text: str,
    words: list[tuple[str, int]],
    args: list[str],
    word: str,
    start: int,
) -> list[Completion]:
    kind = cmd.complete
    if kind == "none":
        return []
    if kind == "command" and cmd.raw:  # repeat: the rest is a line of its own
        rest_start = words[1][1]
        return _complete_line(session, text[rest_start:])
    if kind == "command":
        if args:
            return []
        return [
            Completion(n + " ", start, n, meta)
            for n, meta in _command_names(session, outside=False)
            if n.startswith(word) and n in REGISTRY
        ]
    if kind == "alias":
        if args:
            return _complete_path(session, word, start)
        return [
            Completion(escape(n) + " ", start, n)
            for n in sorted(session.aliases)
            if n.startswith(word)
        ]
    if kind == "param":
        return _complete_param(session, args, word, start)
    options_done = any(not a.startswith("-") or a == "--" for a in args)
    if cmd.options and not options_done:
        value_opt = _pending_option_value(cmd, args)
        if value_opt is not None:
            return [
                Completion(escape(c) + " ", start, c)
                for c in value_opt.choices
                if c.startswith(word)
            ]
        if word.startswith("-"):
            return _complete_options(cmd, word, start)
    return _complete_path(session, word, start)


def _pending_option_value(cmd: Command, args: list[str]):
    """The option whose value the word being typed is (``view -f <TAB>``), if any."""
    if not args or not args[-1].startswith("-"):
        return None
    by_letter = {o.letter: o for o in cmd.options}
    letters = args[-1][1:]
    for pos, letter in enumerate(letters):
        opt = by_letter.get(letter)
        if opt is None:
            return None
        if opt.value:
            return opt if pos == len(letters) - 1 else None
    return None


def _complete_options(cmd: Command, word: str, start: int) -> list[Completion]:
    used = set(word[1:])
    if any(o.value and o.letter in used for o in cmd.options):
        return []  # the value follows in this word
    return [
        Completion(word + o.letter + " ", start, "-" + o.letter, o.help)
        for o in cmd.options
        if o.letter not in used
    ]


def _complete_param(session, args: list[str], word: str, start: int) -> list[Completion]:
    params = session.params
    if not args:
        return [
            Completion(n + " ", start, n, params.spec(n).help)
            for n in params.names()
            if n.startswith(word)
        ]
    if len(args) != 1:
        return []
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


# -- paths ------------------------------------------------------------------------------
def _complete_path(session, word: str, start: int) -> list[Completion]:
    tree = session.tree
    text = word
    if text.startswith("~"):
        head = text.split("/", 1)[0]
        if "/" not in text and head not in ("~~", "~~g", "~~w"):
            return []  # a partial ~user or ~~x
        try:
            text = tree.expand(text)
        except OTraceError:
            return []
    dotted = session.cwd[:2] in _DOTTED_MOUNTS and "/" not in text and ".." not in text
    if dotted:
        head, sep, prefix = text.rpartition(".")
        dir_text = head
    else:
        head, sep, prefix = text.rpartition("/")
        dir_text = head + sep
    try:
        parent_parts = tree.parts(dir_text, session.cwd) if dir_text else session.cwd
        parent = tree.resolve(parent_parts).value
        d = as_dir(parent)
        names = d.names(SCAN_LIMIT)
    except OTraceError:
        return []
    real = isinstance(parent, FsPath)
    matches = [
        n
        for n in names
        if n.startswith(prefix) and not (real and n.startswith(".") and not prefix.startswith("."))
    ]
    matches = _ordered(matches)
    out = []
    for name in matches:
        suffix = ""
        if not dotted:
            suffix = _dir_suffix(parent, parent_parts, d, name, many=len(matches) > 50)
        full = head + sep + name + suffix
        out.append(Completion(escape(full), start, name + suffix))
    return out


def _dir_suffix(parent: Any, parent_parts: tuple[str, ...], d, name: str, many: bool) -> str:
    """``/`` after an entry one can list: a real directory, a mount, a container."""
    if isinstance(parent, FsPath):
        if name == "osh" and parent.path == "/":
            return "/"
        return "/" if FsPath(parent.path.rstrip("/") + "/" + name).is_dir() else ""
    if parent_parts == ("osh",):
        return "/"
    if many:
        return ""
    try:
        value = d.get(name)
    except Exception:
        return ""
    containers = (dict, list, tuple, types.ModuleType, type)
    return "/" if isinstance(value, containers) else ""


def _ordered(names: list[str]) -> list[str]:
    """Sorted, public names before ``_`` names, at most MAX_RESULTS."""
    return sorted(set(names), key=lambda n: (n.startswith("_"), n))[:MAX_RESULTS]


# -- Python names -----------------------------------------------------------------------
def _complete_python(session, text: str) -> list[Completion]:
    """Complete the dotted name at the end of Python ``text``."""
    match = _TAIL.search(text)
    tail = match.group() if match is not None else ""
    before = text[: len(text) - len(tail)]
    if tail[:1].isdigit() or tail.startswith(".") or before.endswith((")", "]", "}", "'", '"')):
        return []  # a number, or an attribute of an expression we will not evaluate
    parts = tail.split(".")
    if not all(p.isidentifier() for p in parts[:-1]):
        return []
    prefix = parts[-1]
    if len(parts) == 1:
        names = _namespace_names(session)
    else:
        obj = _lookup_name(session, parts[0])
        for attr in parts[1:-1]:
            obj = getattr(obj, attr)
        names = _attr_names(obj)
    head = tail[: len(tail) - len(prefix)]
    matches = _ordered([n for n in names if n.startswith(prefix) and n.isidentifier()])
    return [Completion(head + n, -len(tail), n) for n in matches]


def _namespace_names(session) -> list[str]:
    names: list[str] = []
    here: Any = None
    try:
        here = session.here().value
        names.extend(as_dir(here).names(SCAN_LIMIT))
    except OTraceError:
        pass
    glob = session.eval_globals()
    if glob is not here:
        names.extend(
            k
            for k in islice(iter(list(glob) if len(glob) < SCAN_LIMIT else glob), SCAN_LIMIT)
            if isinstance(k, str)
        )
    names.extend(dir(builtins))
    return names


def _lookup_name(session, name: str) -> Any:
    try:
        return as_dir(session.here().value).get(name)
    except (KeyError, OTraceError):
        pass
    glob = session.eval_globals()
    if name in glob:
        return glob[name]
    return getattr(builtins, name)


def _attr_names(obj: Any) -> list[str]:
    own = getattr(obj, "__dict__", None)
    if isinstance(own, dict) and len(own) > SCAN_LIMIT:  # a huge module or instance
        names = [k for k in islice(iter(own), SCAN_LIMIT) if isinstance(k, str)]
        return names + dir(type(obj))
    return [n for n in dir(obj) if isinstance(n, str)]
