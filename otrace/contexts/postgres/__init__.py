"""The PostgreSQL context store: one shared, versioned schema for every process and host.

``set pickle_file postgresql://user@host/db`` (or ``OTRACE_STORE=postgresql://...``) makes
every process write its contexts into the schema (default ``otrace``; ``?schema=NAME``)
through a bounded background writer (:mod:`.writer`); ``unpickle postgresql://...``,
``otrace -p postgresql://...`` and the post-mortem traceback page read it lazily
(:mod:`.reader`), filtered by host, pid, kind, name and time.  The schema and its version
check are in :mod:`.format`.

Imported only when a ``postgresql://`` URL is used (see :mod:`otrace.contexts.targets`);
importing it without psycopg 3 installed raises ImportError.
"""

from __future__ import annotations

import psycopg  # noqa: F401  - fail here, with ImportError, when psycopg is missing

from otrace.contexts.postgres.format import SCHEMA_VERSION, check_writable
from otrace.contexts.postgres.reader import PgTree, open_reader
from otrace.contexts.postgres.writer import PgWriter, open_writer

__all__ = ["SCHEMA_VERSION", "PgTree", "PgWriter", "check_writable", "open_reader", "open_writer"]
