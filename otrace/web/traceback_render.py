"""Markup of one context's traceback, shared by the traceback page and the notebook.

:func:`render_context_html` draws an opened :class:`~otrace.web.traceback_core.PageSession`
(header, frames with their source and locals, ``__trc`` fields, the plain-text traceback)
from the template ``tb_context.html``.  The page includes that template with
``interactive=True`` (a prompt in every frame, the PIN form, a switch for library frames);
the notebook renders it with ``interactive=False`` (library frames shown collapsed, each
frame labelled with its index for ``%%otrace frame N``) inside :func:`render_embedded`, which
adds the page's style sheet scoped to the fragment so it cannot restyle the notebook.
:func:`render_context_text` is the plain-text form, for front ends without HTML.

Thread safety: every function may be called from any thread (templates are compiled once,
under the loader's lock).
"""

from __future__ import annotations

import os
import re
from typing import Any

import tornado.template

from otrace.web.traceback_core import PageSession

HERE = os.path.dirname(os.path.abspath(__file__))

loader = tornado.template.Loader(
    os.path.join(HERE, "templates"), autoescape="xhtml_escape", whitespace="all"
)
_assets: dict[str, str] = {}


def asset(name: str) -> str:
    """The text of a static file of the page (cached)."""
    if name not in _assets:
        with open(os.path.join(HERE, "static", name), encoding="utf-8") as f:
            _assets[name] = f.read()
    return _assets[name]


def render_context_html(
    session: PageSession,
    *,
    interactive: bool = False,
    index_url: str = "",
    source_label: str = "",
    **page: Any,
) -> str:
    """The traceback of ``session`` as an HTML fragment (see the module docstring).

    ``page`` passes further names to the template when it is included by the full page.
    """
    html = loader.load("tb_context.html").generate(
        s=session,
        interactive=interactive,
        index_url=index_url,
        source_label=source_label,
        **page,
    )
    return html.decode("utf-8")


_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")


def scoped_css(css: str, scope: str) -> str:
    """The page's style sheet with every rule limited to elements inside ``scope``.

    ``:root`` and ``body`` become the scope itself.  Handles the flat rules of ``tb.css``
    (no nested at-rules).
    """
    out = []
    for selectors, body in _RULE.findall(css):
        scoped = []
        for sel in selectors.split(","):
            sel = sel.strip()
            if sel in (":root", "body"):
                scoped.append(scope)
            elif sel == "*":
                scoped.append(f"{scope} *")
            else:
                scoped.append(f"{scope} {sel}")
        out.append(f"{', '.join(scoped)} {{{body}}}")
    return "\n".join(out)


def render_embedded(session: PageSession, *, source_label: str = "") -> str:
    """The fragment for embedding in another page (a notebook): scoped styles, no script."""
    scope = ".otrace-tb-embed"
    body = render_context_html(session, interactive=False, source_label=source_label)
    css = scoped_css(asset("tb.css"), scope)
    return (
        f'<div class="otrace-tb-embed"><style>{css}\n{scope} .tb-frames {{ margin: 0 }}'
        f"</style>{body}</div>"
    )


def render_context_text(session: PageSession, *, locals_limit: int = 20) -> str:
    """The traceback of ``session`` as plain text: headline, frames, current lines, locals."""
    lines = [session.title, f"trace id {session.trace_id}"]
    lines += [f"{key}: {value}" for key, value in session.meta.items() if key != "where"]
    for f in session.frames:
        tag = "  (library)" if f.library else ""
        lines.append(f"frame {f.index}: {f.filename}:{f.lineno} in {f.funcname}{tag}")
        for n, text, cur in f.source():
            if cur:
                lines.append(f"  {n:>5} > {text}")
        items = f.local_items()
        for name, value in items[:locals_limit]:
            lines.append(f"        {name} = {value}")
        if len(items) > locals_limit:
            lines.append(f"        ... {len(items) - locals_limit} more locals")
    return "\n".join(lines)
