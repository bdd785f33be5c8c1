"""Where ``pickle_file`` / ``unpickle`` / ``otrace -p`` point: a file, or a database URL.

A value that looks like a URL (``scheme://...``) names a database back end; anything else is
a SQLite file path (:mod:`otrace.contexts.sqlite`).  This module is the back-end-neutral
door to the database back ends: it parses the URL into a :class:`DatabaseTarget` and
opens writers (:class:`~otrace.contexts.writer_thread.BatchWriter`) and lazy readers (the
``kind -> Name -> ctxid -> timestamp -> {":": ctx}`` tree every store shows) for it.  Back
ends are imported only when a URL of theirs is used, so ``import otrace`` never imports a
database driver (``lint-imports`` checks it for psycopg).

Supported: ``postgresql://`` (and ``postgres://``), see :mod:`otrace.contexts.postgres`.

Thread safety: every function may be called from any thread; none keeps shared state.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from otrace.errors import StoreError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCHEMES = {"postgresql": "postgresql", "postgres": "postgresql"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
ENV = "OTRACE_STORE"


def is_url(value: Any) -> bool:
    """True if ``value`` names a database (``scheme://...``) rather than a file."""
    return isinstance(value, str) and bool(_URL.match(value.strip()))


def from_environment() -> str:
    """The store named by ``OTRACE_STORE`` ('' if unset)."""
    return os.environ.get(ENV, "").strip()


@dataclass(frozen=True)
class DatabaseTarget:
    """A parsed database URL.  ``url`` goes to the driver (without otrace's own query
    parameters); ``display`` is the URL with any password hidden (for messages);
    ``schema`` is the database schema otrace's tables live in (``?schema=``, default
    ``otrace``).  Equal targets are the same store."""

    backend: str
    url: str = field(repr=False)
    display: str
    schema: str

    def __str__(self) -> str:
        return self.display


def parse(value: str) -> DatabaseTarget:
    """Parse a store URL; StoreError (one line) if it is not one otrace can use."""
    text = value.strip()
    parts = urlsplit(text)
    backend = _SCHEMES.get(parts.scheme.lower())
    if backend is None:
        raise StoreError(
            f"unsupported store URL scheme {parts.scheme!r} (use postgresql://... or a file path)"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = "otrace"
    rest = []
    for name, val in query:
        if name == "schema":
            schema = val
        else:
            rest.append((name, val))
    if not _IDENT.match(schema):
        raise StoreError(f"schema must be a plain SQL name (letters, digits, _), not {schema!r}")
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    shown = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return DatabaseTarget(backend, url, shown, schema)


def display(value: str) -> str:
    """``value`` as it may be shown (a URL's password hidden)."""
    if not is_url(value):
        return value
    try:
        return parse(value).display
    except StoreError:
        return value.split("://", 1)[0] + "://..."


def _backend(target: DatabaseTarget) -> Any:
    try:
        from otrace.contexts import postgres
    except ImportError as exc:  # psycopg missing
        raise StoreError(
            f"{target}: PostgreSQL stores need psycopg 3 (pip install 'otrace[postgres]'): {exc}"
        ) from None
    return postgres


def check_writable(target: DatabaseTarget, **options: Any) -> None:
    """Connect, create or check the schema, disconnect; StoreError if it cannot be used."""
    _backend(target).check_writable(target, **options)


def open_writer(target: DatabaseTarget, **options: Any) -> Any:
    """A running :class:`~otrace.contexts.writer_thread.BatchWriter` for ``target`` (its
    ``path`` is ``target``).  Options it does not know (a SQLite writer's) are ignored."""
    return _backend(target).open_writer(target, **options)


def open_reader(target: DatabaseTarget, filters: dict[str, str], **options: Any) -> Any:
    """A lazy read-only tree of the contexts in ``target`` that match ``filters``."""
    return _backend(target).open_reader(target, filters, **options)
