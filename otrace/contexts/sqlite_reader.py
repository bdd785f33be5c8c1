"""Reading a context file lazily: a read-only tree whose keys come from small SQL queries.

:func:`open_tree` returns a :class:`PickledTree`, a ``Mapping``
``kind -> Name -> ctxid -> timestamp -> {":": context}``; a context is unpickled only when
its ``":"`` entry is read, restricted to data unless the tree was opened with ``trust=True``
(see :mod:`otrace.contexts.unpickle`).  Keys that hold control characters (a crafted file)
are shown escaped and still lead to their records.

Thread safety: a tree may be used from any thread (queries are serialised on a lock).
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from otrace.contexts.record import TraceContext
from otrace.contexts.safe import escape_controls
from otrace.contexts.sanitize import decode
from otrace.contexts.sqlite_format import connect, one_line
from otrace.errors import StoreError

_FIELDS = {
    "kind": "kind",
    "key": "key",
    "methodname": "methodname",
    "context_id": "context_id",
    "timestamp": "timestamp",
    "pid": "pid",
}
_LEVELS = ("kind", "methodname", "context_id", "timestamp")
_GLOB = set("*?[")


def parse_filters(words: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["methodname=Cart.boom", ...]`` to a dict; StoreError for a word without ``=``."""
    out: dict[str, str] = {}
    for word in words:
        field, sep, value = word.partition("=")
        if not sep or not field:
            raise StoreError(f"expected field=value, not {word!r}")
        out[field.strip()] = value
    return out


class _Level(Mapping[str, Any]):
    """One directory level of a :class:`PickledTree` (keys from SQL, children on demand)."""

    def __init__(self, tree: PickledTree, prefix: tuple[str, ...]) -> None:
        self._tree = tree
        self._prefix = prefix

    def __getitem__(self, key: str) -> Any:
        return self._tree._child(self._prefix, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tree._keys(self._prefix))

    def __len__(self) -> int:
        return len(self._tree._keys(self._prefix))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._tree._keyset(self._prefix)

    def __repr__(self) -> str:
        return "{" + ", ".join(self._tree._keys(self._prefix)[:20]) + "}"


class PickledEntry(Mapping[str, Any]):
    """A timestamp directory: its one entry ``":"`` is the context, unpickled when read."""

    def __init__(self, tree: PickledTree, recnum: int, key: str) -> None:
        self._tree = tree
        self.recnum = recnum
        self.trace_id = key

    def __getitem__(self, key: str) -> Any:
        if key != ":":
            raise KeyError(key)
        return self._tree.load(self.recnum)

    def __iter__(self) -> Iterator[str]:
        return iter((":",))

    def __len__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return "{:}"


class PickledTree(_Level):
    """The contexts of one pickle file as ``kind -> Name -> ctxid -> timestamp -> {":": ctx}``.

    Every level is a read-only ``Mapping``; its keys come from one SQL query (kept until
    :meth:`refresh`), and a context is unpickled only when its ``":"`` entry is read (the
    last 64 stay loaded, so browsing one keeps its identity).  If several records share a
    timestamp (several processes), the later ones show as ``<timestamp>#<recnum>``.
    Loading a context that does not unpickle raises StoreError.

    Thread safety: may be used from any thread (queries are serialised on a lock).
    """

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        filters: dict[str, str],
        *,
        trust: bool = False,
    ) -> None:
        super().__init__(self, ())
        self.path = path
        self.filters = dict(filters)
        self.trust = trust
        self._conn = conn
        # a tree nobody closes still closes its file when it is dropped
        self._finalizer = weakref.finalize(self, conn.close)
        self._lock = threading.RLock()
        where: list[str] = []
        args: list[Any] = []
        for field, value in filters.items():
            column = _FIELDS[field]
            if column == "pid":
                where.append("pid = ?")
                args.append(int(value))
            elif _GLOB & set(value):
                where.append(f"{column} GLOB ?")
                args.append(value)
            else:
                where.append(f"{column} = ?")
                args.append(value)
        self._where = where
        self._args = args
        self._hidden: set[tuple[str, ...]] = set()
        self._key_cache: dict[tuple[str, ...], list[str]] = {}
        self._set_cache: dict[tuple[str, ...], frozenset[str]] = {}
        self._labels: dict[tuple[str, ...], dict[str, tuple[int, str]]] = {}
        # shown key -> the value in the file, for keys shown escaped (per parent prefix)
        self._raw: dict[tuple[str, ...], dict[str, str]] = {}
        self._loaded: OrderedDict[int, TraceContext] = OrderedDict()

    # -- SQL -------------------------------------------------------------------------------
    def _query(self, sql: str, args: list[Any]) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot read pickle file: {one_line(exc)}") from None

    def _clause(self, prefix: tuple[str, ...]) -> tuple[str, list[Any]]:
        where = list(self._where) + [f"{col} = ?" for col in _LEVELS[: len(prefix)]]
        raw = [self._raw.get(prefix[:i], {}).get(key, key) for i, key in enumerate(prefix)]
        args = list(self._args) + raw
        return (" WHERE " + " AND ".join(where)) if where else "", args

    def _keys(self, prefix: tuple[str, ...]) -> list[str]:
        keys = self._key_cache.get(prefix)
        if keys is not None:
            return keys
        clause, args = self._clause(prefix)
        if len(prefix) < 3:
            col = _LEVELS[len(prefix)]
            rows = self._query(
                f"SELECT DISTINCT {col} FROM otrace_context{clause} ORDER BY {col}", args
            )
            shown = self._raw.setdefault(prefix, {})
            keys = []
            for (value,) in rows:
                key = escape_controls(str(value))
                shown.setdefault(key, value)
                if prefix + (key,) not in self._hidden:
                    keys.append(key)
        else:
            rows = self._query(
                "SELECT timestamp, recnum, key FROM otrace_context"
                f"{clause} ORDER BY timestamp, recnum",
                args,
            )
            labels: dict[str, tuple[int, str]] = {}
            last = None
            for ts, recnum, key in rows:
                label = escape_controls(ts) if ts != last else f"{escape_controls(ts)}#{recnum}"
                last = ts
                if prefix + (label,) not in self._hidden:
                    labels[label] = (recnum, key)
            self._labels[prefix] = labels
            keys = list(labels)
        if len(prefix) < 3:
            keys = [k for k in keys if len(prefix) == 3 or self._keys_nonempty(prefix + (k,))]
        self._key_cache[prefix] = keys
        self._set_cache[prefix] = frozenset(keys)
        return keys

    def _keys_nonempty(self, prefix: tuple[str, ...]) -> bool:
        """Cheap unless something below was removed (then the level is listed)."""
        if not any(h[: len(prefix)] == prefix and len(h) > len(prefix) for h in self._hidden):
            return True
        return bool(self._keys(prefix))

    def _keyset(self, prefix: tuple[str, ...]) -> frozenset[str]:
        if prefix not in self._set_cache:
            self._keys(prefix)
        return self._set_cache[prefix]

    def _child(self, prefix: tuple[str, ...], key: str) -> Any:
        if not isinstance(key, str) or key not in self._keyset(prefix):
            raise KeyError(key)
        if len(prefix) < 3:
            return _Level(self, prefix + (key,))
        recnum, trace_id = self._labels[prefix][key]
        return PickledEntry(self, recnum, trace_id)

    # -- public ----------------------------------------------------------------------------
    def load(self, recnum: int) -> TraceContext:
        """Unpickle record ``recnum`` (kept among the last 64 loaded); StoreError if damaged."""
        with self._lock:
            ctx = self._loaded.get(recnum)
            if ctx is not None:
                self._loaded.move_to_end(recnum)
                return ctx
        rows = self._query(
            "SELECT key, kind, created, pid, pickled_object FROM otrace_context WHERE recnum = ?",
            [recnum],
        )
        if not rows:
            raise StoreError(f"{self.path}: record {recnum} is gone")
        key, kind, created, pid, blob = rows[0]
        try:
            ctx = decode(
                blob,
                key=escape_controls(key),
                kind=escape_controls(kind),
                created=created,
                trust=self.trust,
            )
        except Exception as exc:
            raise StoreError(
                escape_controls(f"{self.path}: cannot unpickle {key}: {one_line(exc)}")
            ) from None
        ctx.pid = pid  # type: ignore[attr-defined]
        ctx.source = str(self.path)  # type: ignore[attr-defined]
        with self._lock:
            self._loaded[recnum] = ctx
            while len(self._loaded) > 64:
                self._loaded.popitem(last=False)
        return ctx

    def find(self, trace_id: str) -> TraceContext | None:
        """The (first) context stored under ``trace_id``, loaded; None if there is none."""
        clause, args = self._clause(())
        extra = " AND key = ?" if clause else " WHERE key = ?"
        rows = self._query(
            f"SELECT recnum FROM otrace_context{clause}{extra} ORDER BY recnum LIMIT 1",
            args + [trace_id],
        )
        return self.load(rows[0][0]) if rows else None

    def newest(self) -> tuple[str, str, str, str] | None:
        """The tree path (kind, Name, ctxid, label) of the last record written, if any."""
        clause, args = self._clause(())
        rows = self._query(
            "SELECT kind, methodname, context_id, recnum FROM otrace_context"
            f"{clause} ORDER BY created DESC, recnum DESC LIMIT 1",
            args,
        )
        if not rows:
            return None
        kind, name, ctxid, recnum = rows[0]
        prefix = tuple(escape_controls(str(v)) for v in (kind, name, ctxid))
        if not all(prefix[i] in self._keyset(prefix[:i]) for i in range(3)):
            return None  # removed from the displayed tree
        for label in self._keys(prefix):
            if self._labels[prefix][label][0] == recnum:
                return (*prefix, label)  # type: ignore[return-value]
        return None

    def count(self) -> int:
        """How many records match the filters (removed branches included)."""
        clause, args = self._clause(())
        return self._query(f"SELECT count(*) FROM otrace_context{clause}", args)[0][0]

    def remove(self, path_parts: list[str] | tuple[str, ...]) -> int:
        """Hide a branch (1 to 4 path parts below the tree) from the displayed tree.

        Records stay in the file.  Returns how many contexts were hidden; StoreError if the
        path does not exist.
        """
        parts = tuple(path_parts)
        if not 1 <= len(parts) <= 4:
            raise StoreError(f"cannot remove {'/'.join(parts) or '(nothing)'}: give 1 to 4 levels")
        node: Any = self
        for part in parts:
            if not isinstance(node, _Level) or part not in node:
                raise StoreError(f"no such pickled entry: {'/'.join(parts)}")
            node = node[part]
        hidden = 1 if len(parts) == 4 else self._count_below(parts)
        with self._lock:
            self._hidden.add(parts)
            self._key_cache.clear()
            self._set_cache.clear()
            self._labels.clear()
        return hidden

    def _count_below(self, prefix: tuple[str, ...]) -> int:
        if len(prefix) == 3:
            return len(self._keys(prefix))
        return sum(self._count_below(prefix + (k,)) for k in self._keys(prefix))

    def refresh(self) -> None:
        """Forget cached listings (records written since show up)."""
        with self._lock:
            self._key_cache.clear()
            self._set_cache.clear()
            self._labels.clear()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"<PickledTree {self.path} {self.filters or ''}>"


def check_filters(filters: dict[str, str]) -> None:
    """StoreError (one line) for an unknown filter field or a pid that is not a number."""
    unknown = sorted(set(filters) - set(_FIELDS))
    if unknown:
        raise StoreError(f"unknown filter field {unknown[0]!r} (use {', '.join(_FIELDS)})")
    if "pid" in filters and not filters["pid"].isdigit():
        raise StoreError(f"pid filter must be a number, not {filters['pid']!r}")


def open_tree(path: Path, filters: dict[str, str], *, trust: bool = False) -> PickledTree:
    """Open the context file ``path`` for browsing; StoreError (one line) if it cannot be.

    See :func:`otrace.contexts.sqlite.open_pickled`, which also resolves the path and
    writes what this process still has queued for the file.
    """
    check_filters(filters)
    conn = connect(path, create=False, busy_timeout=5.0)
    tree = PickledTree(path, conn, filters, trust=trust)
    try:
        list(tree)  # touch the index now, so a damaged file fails here
    except StoreError:
        conn.close()
        raise
    return tree
