"""Post-mortem persistence of trace contexts in SQLite (``set pickle_file`` / ``unpickle``).

Writing: :func:`install` hooks the ``pickle_file`` parameter and subscribes to the runtime's
``ContextRecorded`` events (:class:`PersistenceHook`, ``rt.persistence``).  Once ``pickle_file`` names a file, every new context is frozen on the thread that
created it (see :mod:`otrace.contexts.sanitize`; cheap) and put on a bounded queue; a
:class:`PickleWriter` thread pickles and inserts it.  The traced program never waits on the
disk: if the queue is full the context is dropped and counted, and a full disk, a locked file
or any other write error is announced once per kind of error while the program carries on.

Several processes may write to one file (a server with worker processes): the database runs
in WAL mode with a busy timeout, and a write that still finds the file locked is retried.
A writer inherited through ``fork`` starts afresh in the child.  Every batch is one
transaction, so a process killed mid-write leaves every committed record readable.

Reading: :func:`open_pickled` returns a :class:`PickledTree`, a read-only ``Mapping``
``kind -> Name -> ctxid -> timestamp -> {":": context}`` whose keys come from small SQL
queries; a context is unpickled only when its ``":"`` entry is read.

The file format (``FORMAT_VERSION``)::

    otrace_meta(name TEXT PRIMARY KEY, value TEXT)    -- format=otrace-pickle, version=1
    otrace_context(recnum INTEGER PRIMARY KEY AUTOINCREMENT,
                   key TEXT,            -- trace id (not unique: several processes)
                   kind TEXT, methodname TEXT, context_id TEXT, timestamp TEXT,
                   created REAL, pid INTEGER,
                   pickled_object BLOB) -- see sanitize.encode

Thread safety: every public function and method may be called from any thread.
"""

from __future__ import annotations

import atexit
import os
import queue
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from otrace import _default
from otrace.contexts.record import TraceContext
from otrace.contexts.sanitize import (
    DEFAULT_LIMITS,
    Limits,
    Snapshot,
    decode,
    encode,
    freeze_context,
)
from otrace.contexts.store import ContextStore
from otrace.errors import StoreError
from otrace.events import ContextRecorded
from otrace.log import announce, get_logger
from otrace.params import Params

log = get_logger("pickle")

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
_INSERT = (
    "INSERT INTO otrace_context (key, kind, methodname, context_id, timestamp, created,"
    " pid, pickled_object) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

# SQLite primary result codes
_BUSY, _LOCKED, _FULL = 5, 6, 13


def _code(exc: sqlite3.Error) -> int:
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def _one_line(exc: BaseException) -> str:
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


def _connect(path: Path, *, create: bool, busy_timeout: float) -> sqlite3.Connection:
    """Open and check a pickle file; every failure becomes a one-line StoreError."""
    if not create and not path.exists():
        raise StoreError(f"{path}: no such file")
    if path.is_dir():
        raise StoreError(f"{path}: is a directory")
    if create and not path.parent.is_dir():
        raise StoreError(f"{path}: no such directory {path.parent}")
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
        if create:  # readers leave the file as it is
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        _check_format(conn, path, create=create)
        return conn
    except StoreError:
        if conn is not None:
            conn.close()
        raise
    except (sqlite3.Error, OSError) as exc:
        if conn is not None:
            conn.close()
        raise StoreError(f"{path}: cannot open pickle file: {_one_line(exc)}") from None


# -- writing ---------------------------------------------------------------------------------


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class PickleWriter:
    """Writes trace contexts to one pickle file from a thread of its own.

    :meth:`submit` may be called from any thread and never blocks or raises; :meth:`flush`
    and :meth:`close` may be called from any thread except the writer's own.
    Opening checks the file at once and raises :class:`StoreError` if it cannot be used.

    ``max_file_bytes`` caps the database size (writes beyond it fail as a full disk would).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        busy_timeout: float = 5.0,
        retries: int = 5,
        limits: Limits = DEFAULT_LIMITS,
        max_file_bytes: int | None = None,
        report=announce,
    ) -> None:
        self.path = Path(path)
        self.limits = limits
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._busy_timeout = busy_timeout
        self._retries = retries
        self._max_file_bytes = max_file_bytes
        self._report_sink = report
        self.submitted = self.written = self.dropped = self.failed = 0
        self._reported: set[str] = set()
        self._closed = False
        self._start(_connect(self.path, create=True, busy_timeout=busy_timeout))

    def _start(self, conn: sqlite3.Connection) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        # Held by the writer thread while it pickles and talks to SQLite, and taken around
        # os.fork() (see _before_fork), so a child never inherits SQLite or pickle state
        # half-way through a write -- the classic fork-with-threads deadlock.
        self._io_lock = threading.Lock()
        _WRITERS.add(self)
        self._queue: queue.Queue[Any] = queue.Queue(self._queue_size)
        if self._max_file_bytes:
            page = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {max(1, self._max_file_bytes // page)}")
        self._conn = conn
        self._thread = threading.Thread(
            target=self._run, name=f"otrace-pickle-{self.path.name}", daemon=True
        )
        self._thread.start()

    def _after_fork(self) -> None:
        """In a forked child: leave the parent's connection alone and start over."""
        _LEAKED.append(self._conn)  # closing it here could disturb the parent's locks
        self.submitted = self.written = self.dropped = self.failed = 0
        self._reported = set()
        self._start(_connect(self.path, create=True, busy_timeout=self._busy_timeout))

    # -- any thread --------------------------------------------------------------------
    def submit(self, ctx: TraceContext) -> None:
        """Freeze ``ctx`` now and queue it for writing.  Never blocks, never raises."""
        try:
            if self._closed:
                return
            if self._pid != os.getpid():
                self._after_fork()
            snap = freeze_context(ctx, self._pid, self.limits)
            self.submitted += 1
            self._queue.put_nowait(snap)
        except queue.Full:
            self.dropped += 1
            self._report("queue", "writing cannot keep up; contexts are being dropped")
        except Exception as exc:
            self.failed += 1
            self._report("submit", f"cannot snapshot {getattr(ctx, 'id', ctx)!r}: {_one_line(exc)}")

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written (or failed); False on timeout."""
        if self._pid != os.getpid():
            return True  # forked, nothing submitted here yet
        if self._closed or not self._thread.is_alive():
            return self._queue.empty()
        marker = _Flush()
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.done.wait(max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (waiting up to ``timeout``), then stop and close the file."""
        if self._closed:
            return
        self._closed = True
        if self._pid != os.getpid():
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)

    def stats(self) -> dict[str, int]:
        """Counts of contexts submitted, written, dropped (queue full) and failed (errors)."""
        return {
            "submitted": self.submitted,
            "written": self.written,
            "dropped": self.dropped,
            "failed": self.failed,
            "queued": self._queue.qsize(),
        }

    def _report(self, kind: str, message: str) -> None:
        with self._lock:
            if kind in self._reported:
                return
            self._reported.add(kind)
        text = f"otrace: pickle_file {self.path}: {message} (reported once)"
        log.info("%s", text)
        try:
            self._report_sink(text)
        except Exception:
            pass

    # -- writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        conn = self._conn
        stop = False
        while not stop:
            items = [self._queue.get()]
            while len(items) < self._batch_size:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rows = []
            markers = []
            with self._io_lock:
                for item in items:
                    if item is _STOP:
                        stop = True
                    elif isinstance(item, _Flush):
                        markers.append(item)
                    elif isinstance(item, Snapshot):
                        row = self._encode(item)
                        if row is not None:
                            rows.append(row)
                if rows:
                    self._write(conn, rows)
            for marker in markers:
                marker.done.set()
        try:
            conn.close()
        except sqlite3.Error:
            pass

    def _encode(self, snap: Snapshot) -> tuple | None:
        try:
            blob = encode(snap, self.limits)
        except Exception as exc:
            self.failed += 1
            self._report("encode", f"cannot pickle {snap.key}: {_one_line(exc)}")
            return None
        return (
            snap.key,
            snap.kind,
            snap.name,
            snap.ctxid,
            snap.timestamp,
            snap.created,
            snap.pid,
            blob,
        )

    def _write(self, conn: sqlite3.Connection, rows: list[tuple]) -> None:
        delay = 0.05
        for attempt in range(self._retries + 1):
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(_INSERT, rows)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                self.written += len(rows)
                return
            except sqlite3.Error as exc:
                code = _code(exc)
                if code in (_BUSY, _LOCKED) and attempt < self._retries:
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                self.failed += len(rows)
                if code == _FULL:
                    self._report(
                        "full",
                        f"disk or file full; contexts are not being saved ({_one_line(exc)})",
                    )
                elif code in (_BUSY, _LOCKED):
                    self._report(
                        "locked",
                        f"file stays locked; contexts are being dropped ({_one_line(exc)})",
                    )
                else:
                    self._report("write", f"cannot write: {_one_line(exc)}")
                return
            except Exception as exc:  # pragma: no cover - defensive: never kill the thread
                self.failed += len(rows)
                self._report("write", f"cannot write: {_one_line(exc)}")
                return


# Fork bookkeeping is process-wide by nature (os.register_at_fork is): connections a forked
# child must not close, live writers, and writers whose I/O lock is held across a fork.
_LEAKED: list[sqlite3.Connection] = []
_WRITERS: weakref.WeakSet[PickleWriter] = weakref.WeakSet()
_HELD: list[PickleWriter] = []


def _before_fork() -> None:
    """Wait until no writer thread is inside SQLite or pickle, and keep it out during fork."""
    for w in list(_WRITERS):
        w._io_lock.acquire()
        _HELD.append(w)


def _after_fork_in_parent() -> None:
    while _HELD:
        _HELD.pop()._io_lock.release()


def _after_fork_in_child() -> None:
    # the writer threads did not come along; their locks are ours to drop
    while _HELD:
        _HELD.pop()._io_lock = threading.Lock()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)


class PersistenceHook:
    """A runtime's link between ``pickle_file``, its store and a :class:`PickleWriter`
    (``rt.persistence``): it subscribes to :class:`~otrace.events.ContextRecorded`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.writer: PickleWriter | None = None
        self.params: Params | None = None
        self.store: ContextStore | None = None
        self.workdir: str | None = None
        self.options: dict[str, Any] = {}

    def guard(self, name: str, value: Any) -> None:
        """Refuse a ``pickle_file`` that cannot be opened (runs before the value is stored)."""
        if name != "pickle_file" or not value:
            return
        path = resolve_path(value, self.workdir)
        writer = self.writer
        if writer is not None and writer.path == path:
            return
        _connect(path, create=True, busy_timeout=1.0).close()

    def on_param(self, name: str, old: Any, new: Any) -> None:
        if name == "pickle_file":
            self.open(new or None)

    def open(
        self, path: str | os.PathLike[str] | None, timeout: float = 10.0
    ) -> PickleWriter | None:
        target = resolve_path(path, self.workdir) if path else None
        with self.lock:
            current = self.writer
            if current is not None and target is not None and current.path == target:
                return current
            self.writer = None
        if current is not None:
            current.close(timeout)
        if target is None:
            return None
        writer = PickleWriter(target, **self.options)
        with self.lock:
            self.writer = writer
        return writer

    def on_recorded(self, event: ContextRecorded) -> None:
        writer = self.writer
        if writer is not None:
            writer.submit(event.ctx)

    def install(
        self,
        params: Params,
        store: ContextStore,
        *,
        workdir: str | os.PathLike[str] | None = None,
        **writer_options: Any,
    ) -> None:
        """See :func:`install`."""
        self.uninstall()
        self.params, self.store = params, store
        self.workdir = os.fspath(workdir) if workdir is not None else os.getcwd()
        self.options = dict(writer_options)
        params.add_guard(self.guard)
        params.add_listener(self.on_param)
        store.events.subscribe(ContextRecorded, self.on_recorded)
        current = params.get("pickle_file")
        if current:
            self.open(current)

    def uninstall(self) -> None:
        """See :func:`uninstall`."""
        if self.params is not None:
            self.params.remove_guard(self.guard)
            self.params.remove_listener(self.on_param)
        if self.store is not None:
            self.store.events.unsubscribe(ContextRecorded, self.on_recorded)
        self.params = self.store = None
        self.open(None)


def _hook() -> PersistenceHook:
    return _default.get().persistence


def install(
    params: Params | None = None,
    store: ContextStore | None = None,
    *,
    workdir: str | os.PathLike[str] | None = None,
    **writer_options: Any,
) -> None:
    """Make ``set pickle_file PATH`` write every new context of ``store`` to PATH.

    Relative paths are taken from ``workdir`` (default: the current directory now).
    ``writer_options`` go to :class:`PickleWriter`.  Calling it again re-installs (the old
    hook is removed first).  If ``pickle_file`` is already set, the file is opened now.
    May be called from any thread; raises StoreError if the file in ``pickle_file`` is unusable.
    """
    rt = _default.get()
    rt.persistence.install(
        params if params is not None else rt.params,
        store if store is not None else rt.store,
        workdir=workdir,
        **writer_options,
    )


def uninstall() -> None:
    """Undo :func:`install` and close the writer (after writing what is queued)."""
    _hook().uninstall()


def writer() -> PickleWriter | None:
    """The active writer, if ``pickle_file`` is set."""
    return _hook().writer


def flush(timeout: float = 10.0) -> bool:
    """Wait until every context added so far is in the file; False on timeout."""
    w = _hook().writer
    return True if w is None else w.flush(timeout)


def close(timeout: float = 10.0) -> None:
    """Write what is queued and close the file (``pickle_file`` keeps its value)."""
    _hook().open(None, timeout)


def _close_at_exit() -> None:
    rt = _default.peek()
    if rt is not None:
        rt.persistence.open(None, 2.0)


atexit.register(_close_at_exit)


# -- reading ---------------------------------------------------------------------------------

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

    def __init__(self, path: Path, conn: sqlite3.Connection, filters: dict[str, str]) -> None:
        super().__init__(self, ())
        self.path = path
        self.filters = dict(filters)
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
        self._loaded: OrderedDict[int, TraceContext] = OrderedDict()

    # -- SQL -------------------------------------------------------------------------------
    def _query(self, sql: str, args: list[Any]) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(
                    f"{self.path}: cannot read pickle file: {_one_line(exc)}"
                ) from None

    def _clause(self, prefix: tuple[str, ...]) -> tuple[str, list[Any]]:
        where = list(self._where) + [f"{col} = ?" for col in _LEVELS[: len(prefix)]]
        args = list(self._args) + list(prefix)
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
            keys = [r[0] for r in rows if prefix + (r[0],) not in self._hidden]
        else:
            rows = self._query(
                "SELECT timestamp, recnum, key FROM otrace_context"
                f"{clause} ORDER BY timestamp, recnum",
                args,
            )
            labels: dict[str, tuple[int, str]] = {}
            last = None
            for ts, recnum, key in rows:
                label = ts if ts != last else f"{ts}#{recnum}"
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
            ctx = decode(blob, key=key, kind=kind, created=created)
        except Exception as exc:
            raise StoreError(f"{self.path}: cannot unpickle {key}: {_one_line(exc)}") from None
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


def open_pickled(
    path: str | os.PathLike[str],
    filters: dict[str, str] | None = None,
    *,
    workdir: str | os.PathLike[str] | None = None,
) -> PickledTree:
    """Open a pickle file for browsing; StoreError (one line) if it cannot be.

    ``filters`` maps ``kind``, ``key``, ``methodname``, ``context_id``, ``timestamp`` or
    ``pid`` to a value (a glob if it has ``*?[``); all must match.  If this process is
    writing the same file, what is queued is written first.  May be called from any thread.
    """
    filters = dict(filters or {})
    unknown = sorted(set(filters) - set(_FIELDS))
    if unknown:
        raise StoreError(f"unknown filter field {unknown[0]!r} (use {', '.join(_FIELDS)})")
    if "pid" in filters and not filters["pid"].isdigit():
        raise StoreError(f"pid filter must be a number, not {filters['pid']!r}")
    target = resolve_path(path, workdir)
    rt = _default.peek()
    w = rt.persistence.writer if rt is not None else None
    if w is not None and w.path == target:
        w.flush(5.0)
    conn = _connect(target, create=False, busy_timeout=5.0)
    tree = PickledTree(target, conn, filters)
    try:
        list(tree)  # touch the index now, so a damaged file fails here
    except StoreError:
        conn.close()
        raise
    return tree
