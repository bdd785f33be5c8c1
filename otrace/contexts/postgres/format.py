"""The PostgreSQL schema of stored contexts, its version, and opening a connection.

::

    <schema>.otrace_meta(name text PRIMARY KEY, value text)
        -- format=otrace-contexts, version=1, created_by=<otrace version>
    <schema>.otrace_context(recnum bigserial PRIMARY KEY,
        key text,            -- trace id (not unique: many processes)
        kind text, methodname text, context_id text, timestamp text,
        created double precision,   -- seconds since the epoch
        pid integer, host text,     -- the writing process
        pickled_object bytea)       -- see otrace.contexts.sanitize.encode

The record is the one every back end stores (the SQLite file has the same columns but
``host``).  Connections set ``search_path`` to the schema, so readers share their queries with
the SQLite reader.  The first writer creates the schema under an advisory lock (many workers
start at once); a schema whose version is newer than this otrace knows is refused, naming
both versions.

Thread safety: every function may be called from any thread; none keeps shared state.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import psycopg
from psycopg import sql

from otrace.contexts.targets import DatabaseTarget
from otrace.contexts.writer_thread import one_line
from otrace.errors import StoreError

FORMAT_NAME = "otrace-contexts"
SCHEMA_VERSION = 1
COLUMNS = (
    "key",
    "kind",
    "methodname",
    "context_id",
    "timestamp",
    "created",
    "pid",
    "pickled_object",
    "host",
)
# pg_advisory_xact_lock key: "otrace" in ASCII, so concurrent creators take turns
_LOCK_KEY = 0x6F7472616365

_TABLES = """
CREATE TABLE IF NOT EXISTS otrace_meta (name text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS otrace_context (
    recnum bigserial PRIMARY KEY,
    key text NOT NULL,
    kind text NOT NULL,
    methodname text NOT NULL,
    context_id text NOT NULL,
    timestamp text NOT NULL,
    created double precision NOT NULL,
    pid integer NOT NULL,
    host text NOT NULL,
    pickled_object bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS otrace_context_path
    ON otrace_context (kind, methodname, context_id, timestamp, recnum);
CREATE INDEX IF NOT EXISTS otrace_context_key ON otrace_context (key);
CREATE INDEX IF NOT EXISTS otrace_context_proc ON otrace_context (host, pid);
CREATE INDEX IF NOT EXISTS otrace_context_created ON otrace_context (created)
"""


def connect(
    target: DatabaseTarget,
    *,
    create: bool,
    connect_timeout: float = 5.0,
    statement_timeout: float | None = None,
) -> psycopg.Connection[Any]:
    """Connect and check (or, with ``create``, make) the schema; one-line StoreError else.

    ``statement_timeout`` (seconds) bounds every later statement on the server, and (over
    TCP) how long the connection may go unanswered.
    """
    network: dict[str, Any] = {}
    if statement_timeout:
        # over TCP, a peer that stops answering (a network partition) fails the connection
        # instead of leaving the writer in the kernel's retransmissions for many minutes;
        # libpq ignores these on a unix socket
        network = dict(
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
            tcp_user_timeout=int((statement_timeout + 5) * 1000),
        )
    try:
        conn = psycopg.connect(
            target.url,
            autocommit=True,
            connect_timeout=max(1, round(connect_timeout)),
            application_name="otrace",
            **network,
        )
    except psycopg.Error as exc:
        raise StoreError(f"{target}: cannot connect: {one_line(exc)}") from None
    try:
        if statement_timeout:
            conn.execute(
                sql.SQL("SET statement_timeout = {}").format(int(statement_timeout * 1000))
            )
        _check_schema(conn, target, create=create)
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(target.schema)))
        return conn
    except StoreError:
        conn.close()
        raise
    except psycopg.Error as exc:
        conn.close()
        raise StoreError(f"{target}: cannot use the database: {one_line(exc)}") from None


def _tables(conn: psycopg.Connection[Any], schema: str) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema]
    ).fetchall()
    return {r[0] for r in rows}


def _check_schema(conn: psycopg.Connection[Any], target: DatabaseTarget, *, create: bool) -> None:
    schema = target.schema
    tables = _tables(conn, schema)
    if "otrace_meta" not in tables:
        if tables:
            raise StoreError(f"{target}: schema {schema} holds tables that are not otrace's")
        if not create:
            raise StoreError(f"{target}: no otrace contexts here (no schema {schema})")
        _create(conn, target)
    meta = dict(
        conn.execute(
            sql.SQL("SELECT name, value FROM {}.otrace_meta").format(sql.Identifier(schema))
        ).fetchall()
    )
    if meta.get("format") != FORMAT_NAME:
        raise StoreError(f"{target}: schema {schema} is not an otrace store")
    try:
        version = int(meta.get("version", ""))
    except ValueError:
        raise StoreError(
            f"{target}: unknown otrace schema version {meta.get('version')!r}"
        ) from None
    if version > SCHEMA_VERSION:
        by = meta.get("created_by")
        raise StoreError(
            f"{target}: schema {schema} has version {version}"
            + (f" (made by otrace {by})" if by else "")
            + f"; this otrace ({_otrace_version()}) knows versions up to {SCHEMA_VERSION}"
        )
    if version < 1:
        raise StoreError(f"{target}: unknown otrace schema version {version}")


def _otrace_version() -> str:
    try:
        return importlib.metadata.version("otrace")
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def _create(conn: psycopg.Connection[Any], target: DatabaseTarget) -> None:
    ident = sql.Identifier(target.schema)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(ident))
        for statement in _TABLES.split(";"):
            if statement.strip():
                conn.execute(statement)
        for name, value in (
            ("format", FORMAT_NAME),
            ("version", str(SCHEMA_VERSION)),
            ("created_by", _otrace_version()),
        ):
            conn.execute(
                "INSERT INTO otrace_meta VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                [name, value],
            )


def check_writable(target: DatabaseTarget, **options: Any) -> None:
    """Connect, create or check the schema, and disconnect (see :func:`connect`)."""
    connect(target, create=True, connect_timeout=options.get("connect_timeout", 5.0)).close()
