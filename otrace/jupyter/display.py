"""Rich display of otrace objects in a notebook: a context's traceback, a shell's output.

Both are plain objects with ``_repr_mimebundle_`` (``text/html`` and ``text/plain``), so any
front end shows something: HTML where it can, the console's text elsewhere.  Nothing here
imports IPython.

Thread safety: objects are used from the kernel's thread.
"""

from __future__ import annotations

import html
import shlex
from collections.abc import Iterator, Mapping
from typing import Any

from otrace.shell.output import Result
from otrace.web.traceback_core import (
    FrameView,
    PageSession,
    compile_input,
    context_id,
    open_session,
)
from otrace.web.traceback_render import render_context_text, render_embedded


class ContextView(Mapping[str, Any]):
    """A stored (or live) trace context, displayed as the traceback page draws it.

    Reads like the context (``view["x"]``, ``view["__trc"]``); :attr:`frames` are the
    frames outermost first, each with its own copy of the stored locals, which
    :meth:`run` (and ``%%otrace frame N``) evaluate in, so names a cell assigns stay for
    the next cell of the same frame.
    """

    def __init__(self, ctx: Mapping[str, Any], *, source_label: str = "") -> None:
        self.context = ctx
        self.source_label = source_label
        self.page: PageSession = open_session(ctx, live=False)

    @property
    def trace_id(self) -> str:
        return context_id(self.context)

    @property
    def frames(self) -> list[FrameView]:
        return self.page.frames

    def frame(self, index: int) -> FrameView:
        """Frame ``index`` (0 is the outermost; negative counts from the innermost)."""
        try:
            return self.page.frames[index]
        except (IndexError, TypeError):
            raise IndexError(
                f"no frame {index!r}: this context has frames 0 to {len(self.page.frames) - 1}"
            ) from None

    def run(self, code: str, frame: int = -1) -> Any:
        """Run ``code`` in ``frame`` (its stored locals, its module's globals).

        Statements run; the value of a final expression is returned.  Exceptions the code
        raises propagate, as they would in a cell.
        """
        view = self.frame(frame)
        body, expr = compile_input(code, f"<frame {view.index}: {view.funcname}>")
        if body is not None:
            exec(body, view.globals, view.locals)
        if expr is None:
            return None
        value = eval(expr, view.globals, view.locals)
        if value is not None:
            view.locals["_"] = value
        return value

    # -- Mapping -------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.context[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.context)

    def __len__(self) -> int:
        return len(self.context)

    # -- display -------------------------------------------------------------------------
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {
            "text/plain": render_context_text(self.page),
            "text/html": render_embedded(self.page, source_label=self.source_label),
        }

    def __repr__(self) -> str:
        return f"<otrace context {self.trace_id}: {self.page.title}>"


class ShellOutput:
    """What one shell line printed: the console's text, and an HTML form of it.

    ``ls`` becomes a table of names, ``ls -l`` a table of names and values, Python source
    (``view``) is highlighted; anything else is preformatted text.
    """

    def __init__(self, line: str, result: Result) -> None:
        self.line = line
        self.chunks = [(text, kind) for stream, text, kind in result.chunks if stream == "out"]

    @property
    def text(self) -> str:
        return "".join(text + "\n" for text, _ in self.chunks)

    def __bool__(self) -> bool:
        return bool(self.chunks)

    def _form(self) -> str:
        try:
            words = shlex.split(self.line)
        except ValueError:
            return "text"
        if not words or words[0] != "ls":
            return "text"
        opts = "".join(w[1:] for w in words[1:] if w.startswith("-") and len(w) > 1)
        return "long" if "l" in opts else "names"

    def render_html(self) -> str:
        form = self._form()
        parts = []
        for text, kind in self.chunks:
            if kind == "python":
                parts.append(_highlight(text))
            elif form == "names":
                parts.append(_names_table(text))
            elif form == "long":
                parts.append(_long_table(text))
            else:
                parts.append(f"<pre>{html.escape(text)}</pre>")
        return f'<div class="otrace-out">{"".join(parts)}</div>'

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text.rstrip("\n"), "text/html": self.render_html()}

    def __repr__(self) -> str:
        return self.text.rstrip("\n")


_TABLE = (
    '<table class="otrace-ls" style="border-collapse:collapse;font-family:monospace;'
    'text-align:left">{}</table>'
)
_CELL = '<td style="text-align:left;padding:1px 14px 1px 0;vertical-align:top">{}</td>'


def _names_table(text: str) -> str:
    rows = []
    for line in text.splitlines():
        if line.strip():
            cells = "".join(_CELL.format(html.escape(name)) for name in line.split())
            rows.append(f"<tr>{cells}</tr>")
    return _TABLE.format("".join(rows))


def _long_table(text: str) -> str:
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(" = ")
        if sep:
            cells = _CELL.format(f"<b>{html.escape(name.rstrip())}</b>") + _CELL.format(
                html.escape(value)
            )
        else:
            cells = f'<td colspan="2">{html.escape(line)}</td>'
        rows.append(f"<tr>{cells}</tr>")
    return _TABLE.format("".join(rows))


def _highlight(source: str) -> str:
    """Python source as HTML with inline colours (pygments, which otrace depends on)."""
    try:
        import pygments
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # pragma: no cover - pygments is a dependency of otrace
        return f"<pre>{html.escape(source)}</pre>"
    return pygments.highlight(source, PythonLexer(), HtmlFormatter(noclasses=True))
