"""Texts made when first read: :class:`LazyText`.

A context's long texts (the stack of a call, an exception's traceback and report) are
rendered by whoever reads them first, not by the traced thread that records them.

Thread safety: a LazyText may be read from any thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from otrace.contexts.safe import safe_repr
from otrace.contexts.speedups import new_text as _c_new_text


class LazyText:
    """Text rendered on first use (``str()``) by ``render(*args)``, then kept.

    ``repr`` never renders (a report formats the program's values; code that ``repr``s
    garbage must not trigger that): it shows the text, cut, once rendered.  Give ``render``
    a module-level function and the data it needs, not a closure over the record that will
    hold this text -- that would make a reference cycle.

    ``render`` may run program code (``str`` of an exception, ``repr`` of values): it runs
    when an operator reads the text.  ``safe(*args)``, if given, renders the same text
    without running any (for the writer thread, see :meth:`safe_text`); without it,
    ``render`` itself must be safe.
    """

    __slots__ = ("_job", "_text")

    def __init__(
        self, render: Callable[..., str], *args: Any, safe: Callable[..., str] | None = None
    ):
        # one attribute, replaced whole: another thread reads it without a lock
        self._job: tuple[Callable[..., str], tuple, Callable[..., str] | None] | None = (
            render,
            args,
            safe,
        )
        self._text = ""

    def __str__(self) -> str:
        job = self._job
        if job is not None:
            self._text = _run(job[0], job[1])
            self._job = None
        return self._text

    def safe_text(self) -> str:
        """The text, rendered without running program code if it is not rendered yet (any
        thread; the safe rendering is not kept, so an operator still gets the full one)."""
        job = self._job
        if job is None:
            return self._text
        render, args, safe = job
        if safe is None:
            return str(self)
        return _run(safe, args)

    def __repr__(self) -> str:
        if self._job is not None:
            return "<text rendered when read>"
        return repr(self._text) if len(self._text) <= 200 else repr(self._text[:200]) + "..."

    def __getstate__(self) -> str:
        return str(self)

    def __setstate__(self, state: str) -> None:
        self._job, self._text = None, state

    def __reduce__(self):
        return (_lazy_from_text, (str(self),))


_new = object.__new__


def lazy_text(
    render: Callable[..., str], args: tuple, safe: Callable[..., str] | None = None
) -> LazyText:
    """``LazyText(render, *args, safe=safe)``, made without the class call (about 1,600
    instructions less on 3.12): for the texts recording makes per context.  Replaced below
    by ``otrace._speedups.new_text`` when built, which makes the same text in one call."""
    text = _new(LazyText)
    text._job = (render, args, safe)
    text._text = ""
    return text


def _c_lazy_text() -> Callable[..., LazyText] | None:
    """lazy_text as ``new_text(LazyText, render, args[, safe])``, if it makes LazyTexts
    (its arguments positional, as recording passes them): per text about 1,200 instructions
    less than the Python function on 3.13, mostly ``object.__new__``'s checks."""
    if _c_new_text is None or type(_c_new_text(LazyText, str, ())) is not LazyText:
        return None
    return functools.partial(_c_new_text, LazyText)


_new_py = lazy_text  # (the Python version: tests compare with it)
lazy_text = _c_lazy_text() or lazy_text


def _run(render: Callable[..., str], args: tuple) -> str:
    try:
        return render(*args)
    except Exception as exc:  # a debugger's report must not fail the reader
        return f"<could not render: {safe_repr(exc)}>"


def _lazy_from_text(text: str) -> LazyText:
    lt = LazyText(str, text)
    str(lt)
    return lt
