"""Post-mortem pages: serve the contexts of a stored ``pickle_file`` database.

``python -m otrace.web.traceback FILE [--port N] [--address A] [--filter F=V] [--trust]``
(this module's :func:`main`) binds 127.0.0.1 unless told otherwise; before the PIN a browser
gets only the PIN form (see :mod:`otrace.web.tb_gates`).

Threads: :func:`serve_postmortem` blocks, running its own event loop.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

import tornado.web

from otrace.errors import OTraceError
from otrace.runtime import default
from otrace.web.tb_sources import pickled_source
from otrace.web.traceback import TracebackServer
from otrace.web.traceback_core import ContextSource


def make_app(
    source: ContextSource, **options: Any
) -> tuple[tornado.web.Application, TracebackServer]:
    """A stand-alone application serving pages for ``source`` (``/`` goes to the index)."""
    server = TracebackServer(source, **options)
    handlers: list[Any] = list(server.routes())
    if server.prefix:
        handlers.append((r"/", tornado.web.RedirectHandler, {"url": server.prefix + "/"}))
    app = tornado.web.Application(handlers)
    default().traceback_server = server
    return app, server


def serve_postmortem(
    path: str,
    port: int = 8765,
    *,
    address: str = "127.0.0.1",
    filters: Any = None,
    trust: bool = False,
    **options: Any,
) -> None:
    """Serve the contexts stored in ``path`` (a ``pickle_file`` database) until stopped.

    Blocks, running an event loop; the PIN and URL are announced.  ``options`` go to
    :class:`TracebackServer`.
    """

    async def run() -> None:
        source = pickled_source(path, filters, trust=trust)
        host = "localhost" if address in ("127.0.0.1", "::1", "localhost") else address
        options.setdefault("base_url", f"http://{host}:{port}")
        app, _server = make_app(source, **options)
        app.listen(port, address=address)
        await asyncio.Event().wait()

    asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m otrace.web.traceback FILE [--port N] [--filter FIELD=VALUE] [--no-pin]
    [--trust]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m otrace.web.traceback",
        description="Browse stored trace contexts as interactive tracebacks.",
    )
    parser.add_argument(
        "path", help="a store written with `set pickle_file` (a file or a postgresql:// URL)"
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="only contexts whose key/methodname/context_id/timestamp match",
    )
    parser.add_argument("--no-pin", action="store_true", help="evaluate without a PIN")
    parser.add_argument(
        "--trust",
        action="store_true",
        help="load stored objects with full pickle, which runs code the file names "
        "(default: load them as data)",
    )
    args = parser.parse_args(argv)
    filters = dict(f.split("=", 1) for f in args.filter if "=" in f)
    try:
        serve_postmortem(
            args.path,
            args.port,
            address=args.address,
            filters=filters,
            pin=not args.no_pin,
            trust=args.trust,
        )
    except OTraceError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
