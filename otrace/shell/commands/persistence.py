"""Contexts stored in SQLite: unpickle (open a file under /osh/pickled) and rm."""

from __future__ import annotations

import os

from otrace.contexts import sqlite, targets
from otrace.contexts.safe import escape_controls
from otrace.errors import UsageError
from otrace.shell.registry import Arg, Args, Option, command

FILTER_CHOICES = tuple(
    f + "="
    for f in ("kind", "key", "methodname", "context_id", "timestamp", "pid")
    + ("host", "since", "until")  # a PostgreSQL store's
)


@command(
    "unpickle",
    options=(
        Option(
            "t",
            "trust the file: load objects with full pickle (runs its code)",
            long="trust",
            unsafe="full pickle (it runs code named by the file)",
        ),
    ),
    args=(
        Arg("FILE", "file"),
        Arg("field=value", "text", optional=True, repeat=True, choices=FILTER_CHOICES),
    ),
)
def unpickle(sh, args: Args) -> None:
    """Open a pickle database under /osh/pickled (contexts load only when you enter ':').

    Relative names are taken from the work directory (~~w).  Filters, all of which must
    hold: kind, key, methodname, context_id, timestamp, pid (globs allowed), e.g.
    unpickle trace.db methodname=Cart.boom kind=exceptions
    A PostgreSQL store (unpickle postgresql://user@host/db) also takes host=, since= and
    until= (2026-12-02T05:30, seconds since the epoch, or an age: 10m, 2h).
    Stored values load as data: objects of other classes become stand-ins that keep their
    type name, repr and attributes, and no code named by the file runs.  -t (--trust)
    loads them with full pickle, which runs whatever the file names: only for files you
    trust, and not in safe mode.
    """
    trust = bool(args.flag("t"))  # refused in safe mode by the option's declaration
    sh.out.write(mount_pickled(sh, args.words[0], args.words[1:], trust=trust))


def mount_pickled(sh, name: str, filter_words: list[str], *, trust: bool = False) -> str:
    """Open a context file under /osh/pickled for session ``sh``; the line to show.

    For ``unpickle`` and ``otrace -p`` (whose ``--trust`` is the operator's own word).
    """
    path = sh.tree.expand(name)
    filters = sqlite.parse_filters(filter_words)
    tree = sqlite.open_pickled(path, filters, workdir=sh.tree.work_dir or os.getcwd(), trust=trust)
    old = sh.mounts.get("pickled")
    sh.mounts["pickled"] = tree
    if isinstance(old, sqlite.PickledTree) and old is not tree:
        old.close()
    sh.params.set("unpickle_file", path)
    how = "trusted: full pickle" if trust else "loaded as data; -t to trust the file"
    shown = escape_controls(targets.display(str(path)))
    count = tree.count()
    noun, them = ("context", "it") if count == 1 else ("contexts", "them")
    return f"{count} {noun} in {shown} ({how}); browse {them} under /osh/pickled"


@command(
    "rm",
    options=(Option("r", "remove whole branches"),),
    args=(Arg("path", repeat=True),),
    unsafe="rm: deletion",
)
def rm(sh, args: Args) -> None:
    """Hide stored contexts from /osh/pickled (the database file itself is not changed)."""
    tree = sh.mounts.get("pickled")
    removed = 0
    for word in args.words:
        parts = sh.tree.parts(word, sh.cwd)
        if parts[:2] != ("osh", "pickled") or len(parts) < 3 or ":" in parts:
            raise UsageError(f"Invalid path: {word} (rm works below /osh/pickled)")
        if not isinstance(tree, sqlite.PickledTree):
            raise UsageError("Nothing is unpickled; use unpickle FILE first")
        if len(parts) < 6 and not args.flag("r"):
            raise UsageError(f"rm: {word} is a branch; use rm -r")
        removed += tree.remove(parts[2:])
    sh.out.write(f"Deleted {removed} keys")
