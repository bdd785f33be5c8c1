"""Contexts stored in SQLite: unpickle (open a file under /osh/pickled) and rm."""

from __future__ import annotations

import os

from otrace.contexts import sqlite, targets
from otrace.errors import SafeModeError, UsageError
from otrace.shell.registry import Args, Option, command


@command("unpickle", "unpickle FILE [field=value ...]")
def unpickle(sh, args: Args) -> None:
    """Open a pickle database under /osh/pickled (contexts load only when you enter ':').

    Relative names are taken from the work directory (~~w).  Filters, all of which must
    hold: kind, key, methodname, context_id, timestamp, pid (globs allowed), e.g.
    unpickle trace.db methodname=Cart.boom kind=exceptions
    A PostgreSQL store (unpickle postgresql://user@host/db) also takes host=, since= and
    until= (2026-12-02T05:30, seconds since the epoch, or an age: 10m, 2h).
    """
    if not args.words:
        raise UsageError("usage: unpickle FILE [field=value ...]")
    path = sh.tree.expand(args.words[0])
    filters = sqlite.parse_filters(args.words[1:])
    tree = sqlite.open_pickled(path, filters, workdir=sh.tree.work_dir or os.getcwd())
    old = sh.mounts.get("pickled")
    sh.mounts["pickled"] = tree
    if isinstance(old, sqlite.PickledTree) and old is not tree:
        old.close()
    sh.params.set("unpickle_file", path)
    sh.out.write(
        f"{tree.count()} contexts in {targets.display(path)}; browse them under /osh/pickled"
    )


@command("rm", "rm [-r] path ...", options=(Option("r", "remove whole branches"),))
def rm(sh, args: Args) -> None:
    """Hide stored contexts from /osh/pickled (the database file itself is not changed)."""
    if sh.params.safe_mode:
        raise SafeModeError("rm: deletion not permitted in safe mode; set safe_mode False")
    if not args.words:
        raise UsageError("rm: specify entities to delete")
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
