"""The SQLite file format of stored trace contexts: schema, format marker, opening a file.

::

    otrace_meta(name TEXT PRIMARY KEY, value TEXT)    -- format=otrace-pickle, version=1
    otrace_context(recnum INTEGER PRIMARY KEY AUTOINCREMENT,
                   key TEXT,            -- trace id (not unique: several processes)
                   kind TEXT, methodname TEXT, context_id TEXT, timestamp TEXT,
                   created REAL, pid INTEGER,
                   pickled_object BLOB) -- see otrace.contexts.sanitize.encode

Writers open a file with ``create=True``: the database runs in WAL mode, and a file that is
new is given the schema and the marker.  Opening waits for other processes that hold the
file (several processes may create and write one file at the same moment) for up to
``busy_timeout`` seconds in all, retrying when SQLite reports the file busy without waiting.

Thread safety: every function may be called from any thread; none keeps shared state.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from pathlib import Path

from otrace.errors import StoreError

FORMAT_NAME = "otrace-pickle"
FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS otrace_meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS otrace_context (
    recnum INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    methodname TEXT NOT NULL,
    context_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    created REAL NOT NULL,
    pid INTEGER NOT NULL,
    pickled_object BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS otrace_context_path
    ON otrace_context (kind, methodname, context_id, timestamp, recnum);
CREATE INDEX IF NOT EXISTS otrace_context_key ON otrace_context (key);
"""
INSERT = (
    "INSERT INTO otrace_context (key, kind, methodname, context_id, timestamp, created,"
    " pid, pickled_object) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

_ROW = ", (?, ?, ?, ?, ?, ?, ?, ?)"
#: values per row of :data:`INSERT`
COLUMNS = 8


@functools.lru_cache(maxsize=32)
def insert_many(rows: int) -> str:
    """:data:`INSERT` of ``rows`` rows in one statement (the rows get ascending recnums)."""
    return INSERT + _ROW * (rows - 1)


# SQLite primary result codes
BUSY, LOCKED, FULL = 5, 6, 13


def error_code(exc: sqlite3.Error) -> int:
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def resolve_path(
    path: str | os.PathLike[str], workdir: str | os.PathLike[str] | None = None
) -> Path:
    """``path`` with ``~`` expanded, relative paths taken from ``workdir`` (default: cwd)."""
    p = Path(os.path.expanduser(os.fspath(path)))
    if not p.is_absolute():
        p = Path(workdir if workdir is not None else os.getcwd()) / p
    return p


def _check_format(conn: sqlite3.Connection, path: Path, *, create: bool) -> None:
    """Check (or, for an empty database and ``create``, write) the format marker."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "otrace_meta" not in tables:
        if tables - {"sqlite_sequence"} or not create:
            raise StoreError(f"{path}: not an otrace pickle file (no format marker)")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO otrace_meta VALUES ('format', ?)", (FORMAT_NAME,))
            conn.execute(
                "INSERT OR IGNORE INTO otrace_meta VALUES ('version', ?)", (str(FORMAT_VERSION),)
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    meta = dict(conn.execute("SELECT name, value FROM otrace_meta").fetchall())
    if meta.get("format") != FORMAT_NAME:
        raise StoreError(f"{path}: not an otrace pickle file (format {meta.get('format')!r})")
    try:
        version = int(meta.get("version", ""))
    except ValueError:
        raise StoreError(f"{path}: unknown pickle file version {meta.get('version')!r}") from None
    if version > FORMAT_VERSION:
        raise StoreError(
            f"{path}: written by a newer otrace (format version {version}; "
            f"this one reads up to {FORMAT_VERSION})"
        )
    if version < 1:
        raise StoreError(f"{path}: unknown pickle file version {version}")


def connect(path: Path, *, create: bool, busy_timeout: float = 5.0) -> sqlite3.Connection:
    """Open and check a context file; every failure becomes a one-line StoreError.

    SQLite answers "database is locked" without waiting in a few cases (switching the
    journal mode, or a read transaction that would have to become a write one, while another
    process does the same); those are retried with a short backoff until ``busy_timeout``
    seconds have passed in all.
    """
    if not create and not path.exists():
        raise StoreError(f"{path}: no such file")
    if path.is_dir():
        raise StoreError(f"{path}: is a directory")
    if create and not path.parent.is_dir():
        raise StoreError(f"{path}: no such directory {path.parent}")
    deadline = time.monotonic() + busy_timeout
    delay = 0.01
    while True:
        try:
            return _open(path, create=create, busy_timeout=busy_timeout)
        except sqlite3.Error as exc:
            if error_code(exc) not in (BUSY, LOCKED) or time.monotonic() + delay > deadline:
                raise StoreError(f"{path}: cannot open pickle file: {one_line(exc)}") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def _open(path: Path, *, create: bool, busy_timeout: float) -> sqlite3.Connection:
    mode = "rwc" if create else "rw"
    if not create and not os.access(path, os.W_OK):
        mode = "ro"
    conn = None
    try:
        conn = sqlite3.connect(
            f"{path.as_uri()}?mode={mode}",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=busy_timeout,
        )
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        # readers leave the file as it is; a writer switches it to WAL only once (the switch
        # needs the file to itself)
        if create and conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        if create:
            conn.execute("PRAGMA synchronous = NORMAL")
        _check_format(conn, path, create=create)
        return conn
    except sqlite3.Error:
        if conn is not None:
            conn.close()
        raise
    except StoreError:
        if conn is not None:
            conn.close()
        raise
    except OSError as exc:
        if conn is not None:
            conn.close()
        raise StoreError(f"{path}: cannot open pickle file: {one_line(exc)}") from None
