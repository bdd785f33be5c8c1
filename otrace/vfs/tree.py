"""The mount table under ``/osh`` and resolution of paths to live objects.

``/`` is the real filesystem root, with ``osh`` added; ``/osh/<mount>`` are the virtual
directories (``globals``, ``locals``, ``recent``, ``saved``, ``all``, ``patches``,
``pickled``, ``web``, ``db``).  A path is a tuple of components; resolving walks it from the
root each time, so what you see is always the live object (and a vanished entry is reported
as stale rather than shown from a copy).

Thread safety: a Tree belongs to one shell session and is used from its thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otrace.errors import PathError, SafeModeError
from otrace.vfs import paths
from otrace.vfs.nodes import Dir, FsPath, as_dir, is_dir_like
from otrace.vfs.paths import Parts
from otrace.vfs.pure import Unread

GLOBALS: Parts = ("osh", "globals")


@dataclass(frozen=True)
class Resolved:
    """A resolved path: its components, its value and the value of its parent."""

    parts: Parts
    value: Any
    parent: Any

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else "/"

    @property
    def text(self) -> str:
        return paths.render(self.parts)


class Tree:
    """Resolves path text for one session.

    :param mounts: name -> object for ``/osh/<name>`` (kept by reference, so mounts added
        later, e.g. ``web``, appear at once).
    :param work_dir: what ``~~w`` expands to (default: the process's cwd at expansion time).
    :param newest: returns the path of the newest trace context (what ``~~`` means), or None.
    """

    def __init__(
        self,
        mounts: dict[str, Any],
        *,
        work_dir: str = "",
        newest: Callable[[], Parts | None] = lambda: None,
    ):
        self.mounts = mounts
        self.work_dir = work_dir
        self.newest = newest
        # safe mode: views run no program code and hide private names (see nodes.Dir)
        self.pure: Callable[[], bool] = lambda: False

    def view(self, value: Any) -> Dir:
        """``value`` as a directory under this tree's policy (pure in safe mode)."""
        return as_dir(value, self.pure())

    # -- text -> parts ----------------------------------------------------------------
    def expand(self, text: str) -> str:
        """Expand ``~~``, ``~~g``, ``~~w``, ``~`` and ``~user`` at the start of ``text``."""
        if not text.startswith("~"):
            return text
        if text.startswith("~~"):
            head, _, rest = text[2:].partition("/")
            if head == "":
                base = paths.render(self.newest() or GLOBALS)
            elif head == "g":
                base = paths.render(GLOBALS)
            elif head == "w":
                base = self.work_dir or os.getcwd()
            else:
                raise PathError(f"Unknown special path '~~{head}' (use ~~, ~~g or ~~w)")
            return base.rstrip("/") + ("/" + rest if rest else "")
        return os.path.expanduser(text)

    def parts(self, text: str, cwd: Parts) -> Parts:
        """Absolute components for path text typed while in ``cwd``."""
        text = self.expand(text.strip())
        dotted = len(cwd) >= 2 and cwd[:2] in (GLOBALS, ("osh", "locals"))
        absolute, comps = paths.split(text, dotted=dotted and not text.startswith("~"))
        return paths.join(cwd, comps, absolute)

    # -- parts -> values --------------------------------------------------------------
    def root_value(self, parts: Parts) -> tuple[Any, int]:
        """The value where resolution of ``parts`` starts, and how many parts it used."""
        if parts[:1] == ("osh",):
            return self.mounts, 1
        return FsPath("/"), 0

    def resolve(self, parts: Parts) -> Resolved:
        """Walk ``parts`` from the root; PathError naming the first component that fails."""
        value, used = self.root_value(parts)
        parent: Any = None
        for i, name in enumerate(parts[used:], start=used):
            d = self.view(value) if i == used or is_dir_like(value) else None
            if d is None:
                raise PathError(f"Not a directory: {paths.render(parts[:i])}")
            try:
                parent, value = value, d.get(name)
            except KeyError:
                raise PathError(f"No such entry: {paths.render(parts[: i + 1])}") from None
        if parts == ("osh",):
            parent = FsPath("/")
        return Resolved(parts, value, parent)

    def resolve_text(self, text: str, cwd: Parts) -> Resolved:
        return self.resolve(self.parts(text, cwd))

    def glob(
        self, text: str, cwd: Parts, limit: int = 100_000, most: int | None = None
    ) -> list[Resolved]:
        """Every path matching ``text``, whose components may hold ``*``, ``?``, ``[...]``.

        Without glob characters it is plain resolution (one result, or PathError).  ``most``:
        stop at that many paths (``cd`` needs to know only whether exactly one matches; making
        all 100,000 of a huge dict's cost seconds and full garbage collections that stall
        every program thread).
        """
        parts = self.parts(text, cwd)
        if not any(paths.has_glob(p) for p in parts):
            return [self.resolve(parts)]
        value, used = self.root_value(parts)
        frontier: list[tuple[Parts, Any, Any]] = [(parts[:used], value, None)]
        last = len(parts) - 1
        for index, comp in enumerate(parts[used:], used):
            nxt: list[tuple[Parts, Any, Any]] = []
            for prefix, val, _ in frontier:
                if most is not None and index == last and len(nxt) >= most:
                    break
                if not is_dir_like(val):
                    continue
                try:
                    d = self.view(val)
                except PathError:
                    continue
                if paths.has_glob(comp):
                    names = sorted(paths.match(comp, d.names(limit)))
                else:
                    names = [comp] if d.contains(comp) else []
                for name in names:
                    if most is not None and index == last and len(nxt) >= most:
                        break
                    try:
                        nxt.append((prefix + (name,), d.get(name), val))
                    except KeyError:
                        continue
                    except SafeModeError as exc:  # a property, ...: matched, not read
                        if not d._public([name]):
                            continue
                        nxt.append(
                            (prefix + (name,), Unread(str(exc).split(" not permitted")[0]), val)
                        )
            frontier = nxt
        return [Resolved(p, v, par) for p, v, par in frontier]
