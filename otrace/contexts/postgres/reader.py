"""Reading a PostgreSQL store lazily: the SQLite reader's tree, over a PostgreSQL connection.

:class:`PgTree` is a :class:`~otrace.contexts.sqlite_reader.PickledTree` (the same levels,
lazy loading -- restricted to data unless trusted --, hidden branches, escaped keys and record
labels) whose queries go to PostgreSQL: the connection's
``search_path`` is the store's schema, so the tree's SQL runs there once its ``?``
placeholders are written ``%s`` and ``GLOB`` is written ``SIMILAR TO``.  It adds the
filters a shared store needs: ``host`` (a glob, like the text fields) and ``since`` /
``until`` (see :func:`parse_time`).

Thread safety: as :class:`~otrace.contexts.sqlite_reader.PickledTree` (queries on its lock).
"""

from __future__ import annotations

import datetime
import re
import time
from typing import Any

import psycopg

from otrace.contexts.postgres.format import connect
from otrace.contexts.record import TraceContext
from otrace.contexts.sqlite_reader import PickledTree
from otrace.contexts.targets import DatabaseTarget
from otrace.contexts.writer_thread import one_line
from otrace.errors import StoreError

# filters the SQLite tree knows, and those only a shared store has
_COMMON = ("kind", "key", "methodname", "context_id", "timestamp", "pid")
_EXTRA = ("host", "since", "until")
_RELATIVE = re.compile(r"^-?(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(value: str, now: float | None = None) -> float:
    """Seconds since the epoch for a ``since``/``until`` filter value: an ISO date or time
    (``2026-12-02``, ``2026-12-02T05:30``, local time unless it says otherwise), seconds since
    the epoch, or an age (``30s``, ``10m``, ``2h``, ``1d``: that long ago)."""
    text = value.strip()
    m = _RELATIVE.match(text)
    if m:
        return (time.time() if now is None else now) - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise StoreError(
            f"cannot read time {value!r} (use 2026-12-02T05:30, seconds since the epoch, or 10m)"
        ) from None
    return when.timestamp()


def glob_to_similar(pattern: str) -> str:
    """A glob (``*``, ``?``, ``[...]``) as a ``SIMILAR TO`` pattern (escape character ``\\``)."""
    out = []
    in_class = False
    for ch in pattern:
        if in_class:
            out.append(ch)
            in_class = ch != "]"
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        elif ch == "[":
            out.append(ch)
            in_class = True
        elif ch in "%_|+(){}\\.":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def check_filters(filters: dict[str, str]) -> None:
    unknown = sorted(set(filters) - set(_COMMON) - set(_EXTRA))
    if unknown:
        known = ", ".join(_COMMON + _EXTRA)
        raise StoreError(f"unknown filter field {unknown[0]!r} (use {known})")
    if "pid" in filters and not filters["pid"].isdigit():
        raise StoreError(f"pid filter must be a number, not {filters['pid']!r}")
    for name in ("since", "until"):
        if name in filters:
            parse_time(filters[name])


class PgTree(PickledTree):
    """The contexts of a PostgreSQL store (see the module docstring); ``host`` of a loaded
    context is the host that wrote it."""

    def __init__(
        self,
        target: DatabaseTarget,
        conn: psycopg.Connection[Any],
        filters: dict[str, str],
        *,
        trust: bool = False,
    ) -> None:
        common = {k: v for k, v in filters.items() if k in _COMMON}
        super().__init__(target.display, conn, common, trust=trust)  # type: ignore[arg-type]
        self.target = target
        self.filters = dict(filters)
        where: list[str] = []
        args: list[Any] = []
        for clause, arg in zip(self._where, self._args, strict=True):
            if clause.endswith(" GLOB ?"):
                clause = clause[: -len(" GLOB ?")] + " SIMILAR TO ?"
                arg = glob_to_similar(arg)
            where.append(clause)
            args.append(arg)
        if "host" in filters:
            value = filters["host"]
            if set("*?[") & set(value):
                where.append("host SIMILAR TO ?")
                args.append(glob_to_similar(value))
            else:
                where.append("host = ?")
                args.append(value)
        if "since" in filters:
            where.append("created >= ?")
            args.append(parse_time(filters["since"]))
        if "until" in filters:
            where.append("created <= ?")
            args.append(parse_time(filters["until"]))
        self._where, self._args = where, args

    def _query(self, sql: str, args: list[Any]) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql.replace("?", "%s"), args).fetchall()
            except psycopg.Error as exc:
                raise StoreError(f"{self.path}: cannot read: {one_line(exc)}") from None

    def load(self, recnum: int) -> TraceContext:
        ctx = super().load(recnum)
        if not hasattr(ctx, "host"):
            rows = self._query("SELECT host FROM otrace_context WHERE recnum = ?", [recnum])
            ctx.host = rows[0][0] if rows else ""  # type: ignore[attr-defined]
        return ctx

    def hosts(self) -> list[tuple[str, int, int]]:
        """``(host, pid, contexts)`` of every writing process that matches the filters."""
        clause, args = self._clause(())
        return [
            (h, p, n)
            for h, p, n in self._query(
                f"SELECT host, pid, count(*) FROM otrace_context{clause}"
                " GROUP BY host, pid ORDER BY host, pid",
                args,
            )
        ]

    def __repr__(self) -> str:
        return f"<PgTree {self.path} {self.filters or ''}>"


def open_reader(target: DatabaseTarget, filters: dict[str, str], **options: Any) -> PgTree:
    """Open ``target`` for browsing; StoreError (one line) if it cannot be.  Records load
    as data unless ``trust=True`` (see :mod:`otrace.contexts.unpickle`)."""
    check_filters(filters)
    conn = connect(target, create=False, connect_timeout=options.get("connect_timeout", 5.0))
    try:
        tree = PgTree(target, conn, filters, trust=bool(options.get("trust")))
        list(tree)  # the first query now, so a broken store fails here
    except Exception:
        conn.close()
        raise
    return tree
