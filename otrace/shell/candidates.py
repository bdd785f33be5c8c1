"""Candidate names for TAB completion: paths, files, dotted attributes and Python names.

What is expected at the cursor is decided by :mod:`otrace.shell.completion`; this module
finds the names.  Program objects are hostile: every scan looks at no more than
:data:`SCAN_LIMIT` names of one directory or namespace and returns at most
:data:`MAX_RESULTS`; an object whose ``dir`` or attributes fail gives no names (the caller
catches what escapes).

Thread safety: the session's thread.
"""

from __future__ import annotations

import builtins
import os
import re
import types
from dataclasses import dataclass
from itertools import islice
from typing import Any

from otrace.errors import OTraceError
from otrace.vfs import FsPath

SCAN_LIMIT = 20_000  # names looked at in one directory / namespace
MAX_RESULTS = 500  # completions returned at most
_DOTTED_MOUNTS = (("osh", "globals"), ("osh", "locals"))
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


def escape(word: str) -> str:
    """Quote a word so the shell splits it back to itself (blanks become ``\\ ``)."""
    return _ESCAPE.sub(r"\\\1", word)


def complete_file(session, word: str, start: int) -> list[Completion]:
    """A real file: absolute, ``~``-relative, or relative to the work directory."""
    if word.startswith(("/", "~")):
        return complete_path(session, word, start)
    work = session.tree.work_dir or os.getcwd()
    base = tuple(p for p in work.split("/") if p)
    return complete_path(session, word, start, base=base)


# -- paths ------------------------------------------------------------------------------
def complete_path(
    session, word: str, start: int, base: tuple[str, ...] | None = None
) -> list[Completion]:
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
    cwd = session.cwd if base is None else base
    dotted = cwd[:2] in _DOTTED_MOUNTS and "/" not in text and ".." not in text
    if dotted:
        head, sep, prefix = text.rpartition(".")
        dir_text = head
    else:
        head, sep, prefix = text.rpartition("/")
        dir_text = head + sep
    try:
        parent_parts = tree.parts(dir_text, cwd) if dir_text else cwd
        parent = tree.resolve(parent_parts).value
        d = tree.view(parent)  # safe mode: no private names, no property runs
        names = d.names(SCAN_LIMIT)
    except OTraceError:
        return []
    real = isinstance(parent, FsPath)
    matches = [
        n
        for n in names
        if n.startswith(prefix) and not (real and n.startswith(".") and not prefix.startswith("."))
    ]
    matches = ordered(matches)
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


def ordered(names: list[str]) -> list[str]:
    """Sorted, public names before ``_`` names, at most MAX_RESULTS."""
    return sorted(set(names), key=lambda n: (n.startswith("_"), n))[:MAX_RESULTS]


# -- Python names -----------------------------------------------------------------------
def complete_python(session, text: str) -> list[Completion]:
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
    matches = ordered([n for n in names if n.startswith(prefix) and n.isidentifier()])
    return [Completion(head + n, -len(tail), n) for n in matches]


def _namespace_names(session) -> list[str]:
    names: list[str] = []
    here: Any = None
    try:
        here = session.here().value
        names.extend(session.tree.view(here).names(SCAN_LIMIT))
    except OTraceError:
        pass
    glob = session.eval_globals()
    if glob is not here:
        private = session.tree.pure()  # safe mode: no private names
        names.extend(
            k
            for k in islice(iter(list(glob) if len(glob) < SCAN_LIMIT else glob), SCAN_LIMIT)
            if isinstance(k, str) and not (private and k.startswith("_"))
        )
    names.extend(dir(builtins))
    return names


def _lookup_name(session, name: str) -> Any:
    try:
        return session.tree.view(session.here().value).get(name)
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
