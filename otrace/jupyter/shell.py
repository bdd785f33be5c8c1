"""The otrace shell a notebook talks to: the console's session, on stored contexts.

:class:`NotebookShell` holds one :class:`~otrace.shell.session.Session` (the same commands,
filesystem and output as the console) and the contexts displayed so far, whose frames keep
the names that ``%%otrace frame`` cells assign.  :func:`load` opens a context file without a
shell, as a mapping of trace ids to displayable contexts.  Nothing here imports IPython.

Thread safety: used from the kernel's thread only.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import otrace.shell.commands  # noqa: F401  (declares the commands)
from otrace.contexts import sqlite
from otrace.contexts.record import FrameContext
from otrace.errors import UsageError
from otrace.jupyter.display import ContextView, ShellOutput
from otrace.shell.commands.persistence import mount_pickled
from otrace.shell.session import Session
from otrace.vfs import paths
from otrace.vfs.paths import Parts
from otrace.web.traceback_core import ContextSource, sort_ids

MAX_VIEWS = 64


class NotebookSession(Session):
    """A session whose ``~~`` is the newest context of the open file (else of this process)."""

    def newest_path(self) -> Parts | None:
        # any store's tree that can say which record is newest (SQLite's can)
        newest_of = getattr(self.mounts.get("pickled"), "newest", None)
        if callable(newest_of):
            newest = newest_of()
            if newest is not None:
                return ("osh", "pickled", *newest, ":")
        return super().newest_path()


class NotebookShell:
    """One kernel's otrace shell.  See the module docstring."""

    def __init__(self, work_dir: str | None = None) -> None:
        self.session = NotebookSession(
            {"__name__": "__otrace_notebook__"},
            allow_unsafe=True,
            work_dir=work_dir or os.getcwd(),
        )
        self.session.width = 100
        self.last: ContextView | None = None
        self._views: OrderedDict[int, ContextView] = OrderedDict()

    def close(self) -> None:
        tree = self.session.mounts.get("pickled")
        if isinstance(tree, sqlite.PickledTree):
            tree.close()
        self.session.close()

    # -- commands ------------------------------------------------------------------------
    def open(self, words: list[str]) -> str:
        """``open [-t|--trust] FILE [field=value ...]``: the file under /osh/pickled, cd there."""
        trust = False
        while words and words[0] in ("-t", "--trust"):
            trust = True
            words = words[1:]
        if not words:
            raise UsageError("usage: %otrace open [--trust] FILE [field=value ...]")
        # --trust here is the notebook user's own word, as with otrace -p FILE --trust
        message = mount_pickled(self.session, words[0], words[1:], trust=trust)
        self._views.clear()
        self.last = None
        self.session.cwd = ("osh", "pickled")
        return message

    def execute(self, line: str) -> tuple[ShellOutput, str]:
        """Run a shell line; its output (for display) and its error text."""
        result = self.session.execute(line)
        out = ShellOutput(line, result)
        words = line.split()
        if not out and not result.err and words and words[0] in ("cd", "pushd", "popd", "cde"):
            result.write(paths.render(self.session.cwd))  # where cd went, as the prompt says
            out = ShellOutput(line, result)
        return out, result.err

    def get(self, path: str) -> Any:
        """The object at ``path``; a trace context (or one of its frames) as a ContextView."""
        value = self.session.resolve(path or ".").value
        if isinstance(value, FrameContext):
            return self.view(value)
        return value

    # -- contexts and their frames -------------------------------------------------------
    def view(self, ctx: Mapping[str, Any]) -> ContextView:
        """The (kept) view of ``ctx``: the same one every time, so frame names persist."""
        view = self._views.get(id(ctx))
        if view is None or view.context is not ctx:
            view = ContextView(ctx, source_label=self._label())
            self._views[id(ctx)] = view
            while len(self._views) > MAX_VIEWS:
                self._views.popitem(last=False)
        else:
            self._views.move_to_end(id(ctx))
        self.last = view
        return view

    def current(self, path: str = "") -> ContextView:
        """The context ``%%otrace frame`` works in: ``path``'s, the cwd's, or the last shown."""
        if path:
            value = self.get(path)
            if not isinstance(value, ContextView):
                raise UsageError(f"{path} is not a trace context")
            return value
        root = self.session.context_root()
        if root is not None:
            return self.view(root)
        if self.last is not None:
            return self.last
        raise UsageError(
            "no context: cd into one (%otrace cd ~~) or show one (%otrace get ~~) first"
        )

    def _label(self) -> str:
        tree = self.session.mounts.get("pickled")
        return os.path.basename(tree.path) if isinstance(tree, sqlite.PickledTree) else ""


class StoredContexts(Mapping[str, ContextView]):
    """The contexts of one file by trace id, newest first; each loads when first read."""

    def __init__(self, tree: sqlite.PickledTree) -> None:
        self.tree = tree
        self._source = ContextSource.from_tree(tree, live=False, label=tree.path.name)
        self._views: dict[str, ContextView] = {}

    def __getitem__(self, trace_id: str) -> ContextView:
        view = self._views.get(trace_id)
        if view is None:
            ctx = self._source.get(trace_id)
            if ctx is None:
                raise KeyError(trace_id)
            view = self._views[trace_id] = ContextView(ctx, source_label=self.tree.path.name)
        return view

    def __iter__(self) -> Iterator[str]:
        return iter(sort_ids(self._source.list_ids()))

    def __len__(self) -> int:
        return len(list(self._source.list_ids()))

    @property
    def newest(self) -> ContextView:
        """The context written last."""
        for trace_id in self:
            return self[trace_id]
        raise KeyError("the file holds no contexts")

    def close(self) -> None:
        self.tree.close()

    def __repr__(self) -> str:
        return f"<otrace contexts in {self.tree.path}: {len(self)}>"


def load(
    path: str | os.PathLike[str],
    *,
    trust: bool = False,
    filters: dict[str, str] | None = None,
) -> StoredContexts:
    """Open a context file as ``{trace id: context}`` (see :class:`StoredContexts`).

    Stored objects load as data unless ``trust`` (full pickle, which runs code the file
    names: only for files you trust).  Raises :class:`~otrace.errors.OTraceError` (one
    line) if the file cannot be read.
    """
    return StoredContexts(sqlite.open_pickled(path, filters or {}, trust=trust))
