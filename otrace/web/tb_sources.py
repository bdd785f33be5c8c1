"""Where the traceback page finds contexts: this process's store, or a stored file.

Threads: any; the sources read their store or file when a page asks.
"""

from __future__ import annotations

import os
from typing import Any

from otrace.errors import OTraceError
from otrace.runtime import Runtime, default
from otrace.web.traceback_core import ContextSource


def live_source(runtime: Runtime | None = None) -> ContextSource:
    """The contexts this process holds (``/osh/recent`` and ``/osh/saved`` of ``runtime``,
    default: the default runtime's)."""
    store = (runtime if runtime is not None else default()).store
    return ContextSource(
        get=store.get, list_ids=lambda: list(store.all), live=True, label="this process"
    )


def pickled_source(path: str, filters: Any = None, *, trust: bool = False) -> ContextSource:
    """The contexts stored in a ``pickle_file`` database, read with the SQLite store.

    Stored objects load as data (no code named by the file runs) unless ``trust``.

    Raises :class:`OTraceError` with a clear message if the SQLite store is missing or the
    file cannot be opened.
    """
    try:
        from otrace.contexts.sqlite import open_pickled
    except ImportError:
        raise OTraceError(
            "post-mortem pages need otrace.contexts.sqlite (the SQLite context "
            "store), which this installation of otrace does not have"
        ) from None
    from otrace.contexts import targets

    if targets.is_url(path):
        tree = open_pickled(path, filters if filters is not None else {})
        return ContextSource.from_tree(tree, live=False, label=targets.display(path))
    if not os.path.exists(path):
        raise OTraceError(f"no such pickle database: {path}")
    tree = open_pickled(path, filters if filters is not None else {}, trust=trust)
    return ContextSource.from_tree(tree, live=False, label=os.path.basename(path))
