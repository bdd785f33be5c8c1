"""The PostgreSQL writer: the shared background writer model, talking to a database.

A :class:`PgWriter` is a :class:`~otrace.contexts.writer_thread.BatchWriter`: program threads
only freeze a context and queue it; the writer thread pickles and sends each batch with one
``COPY``.  A database that is slow or gone never reaches the program:

* every statement is bounded on the server (``statement_timeout``) and every connect by
  ``connect_timeout``, so the writer thread itself never hangs;
* while the writer waits, the queue fills and further contexts are dropped (counted);
* a lost connection fails its batch (counted), is announced once with the reason, and is
  retried with a growing pause (``retry_pause`` .. 30 s); batches that arrive while the
  database is away are dropped at once, unpickled (counted as failed).  When it is back that is
  announced and writing resumes.

Thread safety: as :class:`~otrace.contexts.writer_thread.BatchWriter`.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import psycopg

from otrace.contexts.postgres.format import COLUMNS, connect
from otrace.contexts.sanitize import Snapshot
from otrace.contexts.targets import DatabaseTarget
from otrace.contexts.writer_thread import BatchWriter, Row, one_line
from otrace.errors import StoreError

_COPY = f"COPY otrace_context ({', '.join(COLUMNS)}) FROM STDIN"
_MAX_PAUSE = 30.0

# Connections a forked child inherited: never used nor closed there (closing would end the
# parent's session, which shares the socket), kept so they are never garbage-collected.
_ABANDONED: list[Any] = []


class PgWriter(BatchWriter):
    """Writes contexts to a PostgreSQL store (see the module docstring)."""

    def __init__(
        self,
        target: DatabaseTarget,
        *,
        connect_timeout: float = 5.0,
        statement_timeout: float = 10.0,
        retry_pause: float = 1.0,
        **options: Any,
    ) -> None:
        self.path = target  # the writer's identity, as a SQLite writer's file path
        self.target = target
        self.label = target.display
        self.host = socket.gethostname()
        self._connect_timeout = connect_timeout
        self._statement_timeout = statement_timeout
        self._retry_pause = retry_pause
        self._conn: psycopg.Connection[Any] | None = None
        self._retry_at = 0.0
        self._pause = retry_pause
        self._down = False
        super().__init__(**options)

    # -- BatchWriter -------------------------------------------------------------------
    def connect(self) -> None:
        self._conn = connect(
            self.target,
            create=True,
            connect_timeout=self._connect_timeout,
            statement_timeout=self._statement_timeout,
        )

    def ready(self) -> bool:
        return self._conn is not None or time.monotonic() >= self._retry_at

    def row(self, snap: Snapshot, blob: bytes) -> Row:
        return (*super().row(snap, blob), self.host)

    def write_rows(self, rows: list[Row]) -> None:
        conn = self._conn
        if conn is None or conn.closed:
            conn = self._reconnect()
            if conn is None:
                self.count("failed", len(rows))
                return
        try:
            with conn.transaction():
                with conn.cursor() as cur, cur.copy(_COPY) as copy:
                    for row in rows:
                        copy.write_row(row)
        except psycopg.Error as exc:
            self.count("failed", len(rows))
            if conn.closed or isinstance(exc, psycopg.OperationalError):
                self._lost(f"{one_line(exc)}")
            else:
                self.report("write", f"cannot write: {one_line(exc)}")
            return
        self.count("written", len(rows))

    def disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def abandon(self) -> None:
        if self._conn is not None:
            _ABANDONED.append(self._conn)
        self._conn = None
        self._retry_at = 0.0  # the child connects on its first batch

    # -- writer thread -----------------------------------------------------------------
    def _lost(self, why: str) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass
        self._down = True
        self._pause = self._retry_pause
        self._retry_at = time.monotonic() + self._pause
        self.report("down", f"database unreachable ({why}); contexts are dropped until it is back")

    def _reconnect(self) -> psycopg.Connection[Any] | None:
        if time.monotonic() < self._retry_at:
            return None
        try:
            self.connect()
        except StoreError as exc:
            self._pause = min(self._pause * 2, _MAX_PAUSE)
            self._retry_at = time.monotonic() + self._pause
            if not self._down:
                self._down = True
                self.report("down", f"{exc}; contexts are dropped until the database is back")
            return None
        if self._down:
            self._down = False
            self.forget_reports("down", "write")
            self.report("up", "database reachable again; writing resumes", once=False)
        return self._conn


def open_writer(target: DatabaseTarget, **options: Any) -> PgWriter:
    """A running writer for ``target``; SQLite-only options are ignored."""
    known = {
        "queue_size",
        "batch_size",
        "limits",
        "report",
        "connect_timeout",
        "statement_timeout",
        "retry_pause",
    }
    return PgWriter(target, **{k: v for k, v in options.items() if k in known})
