"""Post-mortem persistence of trace contexts in SQLite (``set pickle_file`` / ``unpickle``).

This module wires the parts together; each part has a module of its own:

* :mod:`.sqlite_format` -- the file format, and opening a file (several processes at once);
* :mod:`.sqlite_writer` -- :class:`PickleWriter`, the thread that writes contexts to a file;
* :mod:`.sqlite_reader` -- :class:`PickledTree`, a file read lazily as a read-only tree.

Writing: :func:`install` hooks the ``pickle_file`` parameter and subscribes to the runtime's
``ContextRecorded`` events (:class:`PersistenceHook`, ``rt.persistence``).  Once
``pickle_file`` names a file, every new context is frozen on the thread that created it and
written by a :class:`PickleWriter`; the traced program never waits on the disk.  Several processes may write to one file (a server with worker processes).

Reading: :func:`open_pickled` returns a :class:`PickledTree`, ``kind -> Name -> ctxid ->
timestamp -> {":": context}``.  Records load as data only (no code named by the file runs)
unless opened with ``trust=True`` -- see :mod:`otrace.contexts.unpickle`.

Thread safety: every public function and method may be called from any thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from pathlib import Path
from typing import Any

from otrace import _default
from otrace.contexts import targets
from otrace.contexts.sqlite_format import FORMAT_NAME, FORMAT_VERSION, connect, resolve_path
from otrace.contexts.sqlite_reader import (
    PickledEntry,
    PickledTree,
    open_tree,
    parse_filters,
)
from otrace.contexts.sqlite_writer import PickleWriter
from otrace.contexts.store import ContextStore
from otrace.errors import OTraceError
from otrace.events import ContextRecorded
from otrace.log import announce
from otrace.params import Params

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PersistenceHook",
    "PickleWriter",
    "PickledEntry",
    "PickledTree",
    "close",
    "flush",
    "install",
    "open_pickled",
    "parse_filters",
    "resolve_path",
    "uninstall",
    "writer",
]


class PersistenceHook:
    """A runtime's link between ``pickle_file``, its store and a :class:`PickleWriter`
    (``rt.persistence``): it subscribes to :class:`~otrace.events.ContextRecorded`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.writer: Any = None  # a PickleWriter, or a database back end's BatchWriter
        self.params: Params | None = None
        self.store: ContextStore | None = None
        self.workdir: str | None = None
        self.options: dict[str, Any] = {}

    def guard(self, name: str, value: Any) -> None:
        """Refuse a ``pickle_file`` that cannot be opened (runs before the value is stored)."""
        if name != "pickle_file" or not value:
            return
        path = self.resolve(value)
        writer = self.writer
        if writer is not None and writer.path == path:
            return
        if isinstance(path, targets.DatabaseTarget):
            targets.check_writable(path, **self.options)
        else:
            connect(path, create=True, busy_timeout=self.options.get("busy_timeout", 5.0)).close()

    def resolve(self, value: str | os.PathLike[str]) -> Path | targets.DatabaseTarget:
        """A database URL parsed, or a file path resolved from the work directory."""
        if targets.is_url(value):
            return targets.parse(str(value))
        return resolve_path(value, self.workdir)

    def on_param(self, name: str, old: Any, new: Any) -> None:
        if name == "pickle_file":
            self.open(new or None)

    def open(self, path: str | os.PathLike[str] | None, timeout: float = 10.0) -> Any:
        """Write to ``path`` (a file or a database URL) from now on; None: stop writing."""
        target = self.resolve(path) if path else None
        with self.lock:
            current = self.writer
            if current is not None and target is not None and current.path == target:
                return current
            self.writer = None
        if current is not None:
            current.close(timeout)
        if target is None:
            return None
        if isinstance(target, targets.DatabaseTarget):
            writer = targets.open_writer(target, **self.options)
        else:
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
        elif targets.from_environment():
            self._from_environment(params)

    def _from_environment(self, params: Params) -> None:
        """``OTRACE_STORE`` names the store when ``pickle_file`` is unset; a store that
        cannot be used is announced, and the program runs on without one."""
        try:
            params.set("pickle_file", targets.from_environment())
        except OTraceError as exc:
            announce(f"otrace: {targets.ENV} not used: {exc}", logging.WARNING)

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


def open_pickled(
    path: str | os.PathLike[str],
    filters: dict[str, str] | None = None,
    *,
    workdir: str | os.PathLike[str] | None = None,
    trust: bool = False,
) -> PickledTree:
    """Open a context file for browsing; StoreError (one line) if it cannot be.

    ``filters`` maps ``kind``, ``key``, ``methodname``, ``context_id``, ``timestamp`` or
    ``pid`` to a value (a glob if it has ``*?[``); all must match.  ``path`` may also be a
    database URL (:mod:`otrace.contexts.targets`; more filters there).  Records load as data
    only, unless ``trust`` (full ``pickle``: only for files you trust).  If this process is
    writing the same file, what is queued is written first.  May be called from any thread.
    """
    target = targets.parse(str(path)) if targets.is_url(path) else resolve_path(path, workdir)
    rt = _default.peek()
    w = rt.persistence.writer if rt is not None else None
    if w is not None and w.path == target:
        w.flush(5.0)
    if isinstance(target, targets.DatabaseTarget):
        return targets.open_reader(target, dict(filters or {}), trust=trust)
    return open_tree(target, dict(filters or {}), trust=trust)
