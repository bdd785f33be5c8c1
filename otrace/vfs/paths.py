"""Path text: splitting, ``.``/``..``, dotted names and glob components.

Pure functions on strings; nothing here looks at objects.  Expansion of the special prefixes
(``~~`` and friends) needs to know the newest context and the work directory, so it lives in
:class:`otrace.vfs.tree.Tree`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence

Parts = tuple[str, ...]

_GLOB = re.compile(r"[*?\[]")


def has_glob(component: str) -> bool:
    """True if a path component contains ``*``, ``?`` or ``[...]``."""
    return bool(_GLOB.search(component))


def match(pattern: str, names: Iterable[str]) -> list[str]:
    """Names that fully match a glob component (``?`` is exactly one character)."""
    rx = re.compile(fnmatch.translate(pattern))
    return [n for n in names if rx.match(n)]


def split(text: str, dotted: bool = False) -> tuple[bool, list[str]]:
    """Split path text into (absolute, components).

    With ``dotted`` (inside ``/osh/globals`` or ``/osh/locals``), a relative argument with
    no ``/`` and no ``..`` uses ``.`` as the separator: ``Cart.add_item`` is
    ``Cart/add_item``.
    """
    absolute = text.startswith("/")
    if dotted and not absolute and "/" not in text and ".." not in text and text not in (".", ""):
        return False, [p for p in text.split(".") if p]
    return absolute, [p for p in text.split("/") if p]


def join(cwd: Sequence[str], components: Sequence[str], absolute: bool = False) -> Parts:
    """Apply components to a directory, resolving ``.`` and ``..`` (never above ``/``)."""
    out = [] if absolute else list(cwd)
    for comp in components:
        if comp == ".":
            continue
        if comp == "..":
            if out:
                out.pop()
            continue
        out.append(comp)
    return tuple(out)


def render(parts: Sequence[str]) -> str:
    """``('osh', 'globals')`` -> ``/osh/globals``."""
    return "/" + "/".join(parts)


def relative(parts: Sequence[str], base: Sequence[str]) -> str:
    """``parts`` relative to ``base`` if below it, else absolute."""
    n = len(base)
    if tuple(parts[:n]) == tuple(base) and len(parts) > n:
        return "/".join(parts[n:])
    return render(parts)
