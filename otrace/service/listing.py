"""The ``list`` message: the contexts of ``/osh/recent`` or ``/osh/saved`` as data.

A console that merges many workers' contexts (the fleet console) asks each worker for its
entries instead of parsing ``ls`` text, and the limit is applied in the worker, so no more
than ``limit`` entries cross the socket::

    -> {"t": "list", "id": 7, "path": "/osh/recent/traces", "limit": 1000, "offset": 0,
        "summaries": true}
    <- {"t": "entries", "id": 7, "items": [[name, kind, created, summary], ...], "more": true}
    <- {"t": "entries", "id": 7, "items": [...], "total": 10000, "limit": 1000, "offset": 0}

``items`` are oldest first; ``name`` is the context's path below the root
(``traces/Work.step/tr-call/261202-06-18-03``), ``created`` epoch seconds, ``summary`` (``""`` unless the request
asked for ``summaries``) at most :data:`SUMMARY_CHARS` characters of what the context was
announced with (a call's arguments, an exception), as otrace formatted it when it recorded it:
nothing of the program is called.
``offset`` counts from the newest: offset 0, limit 1000 are the newest thousand.  A missing or
zero ``limit`` is the session's ``ls_limit``.  The entries come in as many frames as they need
(``more`` on all but the last, which carries ``total``, the ``limit``/``offset`` applied and
the session's ``ls_limit``);
an error is one ``entries`` frame with ``error``.  A service offers this when its ``welcome``
lists :data:`CAPABILITY` in ``caps``; older services do not, and get ``ls`` lines instead.

Thread safety: :func:`answer` runs on the console's reader thread, not its worker: it reads
only the session's store (safe from any thread) and otrace's own text in the contexts, never
a program object, so it needs neither the worker's interrupts nor a wait behind a running
command (and the answer skips a thread hop).  The rest are pure.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from otrace.contexts.lazytext import LazyText
from otrace.errors import OTraceError
from otrace.service.protocol import MAX_FRAME

CAPABILITY = "list"
ROOTS = ("recent", "saved")
SUMMARY_CHARS = 160
DEPTH = 4  # kind / Name / ctxid / timestamp


class ListError(OTraceError):
    """A ``list`` request that cannot be answered (bad path, a locked session)."""


class Entry(NamedTuple):
    """One context as listed: its path below the root, kind, creation time, summary."""

    name: str
    kind: str
    created: float
    summary: str


class Listing(NamedTuple):
    """A ``list`` answer as the client sees it: the entries (oldest first), how many there
    are in all, the limit the service applied and its session's ``ls_limit``, or ``error``
    (then nothing else)."""

    entries: list[Entry]
    total: int = 0
    limit: int = 0
    error: str = ""
    ls_limit: int = 0


def parse_path(path: str) -> tuple[str, tuple[str, ...]]:
    """(root, prefix) of ``/osh/recent[/kind[/Name[/ctxid[/timestamp]]]]`` (globs allowed
    below the root); ListError for anything else."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] != ["osh"] or len(parts) < 2 or parts[1] not in ROOTS or len(parts) > 2 + DEPTH:
        raise ListError(f"list: {path!r} is not below /osh/recent or /osh/saved")
    return parts[1], tuple(parts[2:])


def summary(ctx: Any) -> str:
    """What ``ctx`` was announced with, as recorded (text otrace made: never a program
    object's method), cut to SUMMARY_CHARS."""
    trc = ctx.get("__trc") if isinstance(ctx, dict) else None
    if not isinstance(trc, dict):
        return ""
    for key in ("argstr", "exception"):
        text = trc.get(key)
        if isinstance(text, LazyText):  # (otrace's own argument text: renders no program code)
            text = str(text)
        if type(text) is str and text:
            text = text.replace("\n", " ")
            return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 3] + "..."
    return ""


def answer(session: Any, msg_id: int, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``entries`` frames answering a ``list`` request in ``session``."""
    try:
        root, prefix = parse_path(str(args.get("path", "")))
        store = getattr(session, "store", None)
        if store is None:
            raise ListError("list: this session keeps no contexts")
        limit = _count(args.get("limit")) or int(session.params.ls_limit)
        offset = _count(args.get("offset"))
        found, total = store.under(root, prefix, newest=offset + limit)
    except OTraceError as exc:
        return [{"t": "entries", "id": msg_id, "error": str(exc)}]
    page = found[: max(0, len(found) - offset)]
    about = summary if args.get("summaries") is True else _no_summary
    entries = [
        [f"{c.kind}/{c.name}/{c.ctxid}/{c.timestamp}", c.kind, c.created, about(c)] for c in page
    ]
    frames = []
    for items in _pieces(entries):
        frames.append({"t": "entries", "id": msg_id, "items": items, "more": True})
    last = frames[-1]
    del last["more"]
    last.update(total=total, limit=limit, offset=offset, ls_limit=int(session.params.ls_limit))
    return frames


def _no_summary(ctx: Any) -> str:
    return ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _pieces(entries: list[list[Any]]) -> list[list[list[Any]]]:
    """``entries`` cut so that every frame stays well under MAX_FRAME (at least one piece).

    The bound is the worst case of JSON (six bytes per character: ``\\u00XX``), so no
    entry is ever measured by encoding it twice.
    """
    budget = MAX_FRAME // 2
    pieces: list[list[list[Any]]] = [[]]
    used = 0
    for entry in entries:
        size = 6 * (len(entry[0]) + len(entry[1]) + len(entry[3])) + 40
        if used + size > budget and pieces[-1]:
            pieces.append([])
            used = 0
        pieces[-1].append(entry)
        used += size
    return pieces


def entries_of(items: Any) -> list[Entry]:
    """The entries in an ``entries`` frame's ``items`` (client side); malformed ones are
    left out, since a frame is data from another process."""
    found = []
    for item in items if isinstance(items, list) else []:
        if (
            isinstance(item, list)
            and len(item) == 4
            and isinstance(item[0], str)
            and isinstance(item[1], str)
            and isinstance(item[2], int | float)
            and isinstance(item[3], str)
        ):
            found.append(Entry(item[0], item[1], float(item[2]), item[3]))
    return found
