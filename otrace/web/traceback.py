"""Interactive tracebacks in the browser for Tornado: every frame's source and locals, and a
prompt in each frame to evaluate code there -- for live handler errors and stored contexts.

Turn it on for an application in debug mode with one line::

    otrace.tornado.enable_tracebacks(app)

(the Tornado wiring -- mounting the page's routes and capturing handler exceptions -- lives
in :mod:`otrace.tornado`; this module is the page itself).

An uncaught exception in a handler then becomes a trace context in
``/osh/recent/exceptions/<Handler>.<method>/ex-<Error>/...`` and the browser gets the
interactive page (status 500).  Without ``debug=True`` in the application's settings nothing
changes.  Any context the process holds can be opened by URL (:func:`traceback_url`), and
contexts stored with ``pickle_file`` open later in :func:`serve_postmortem`
(``python -m otrace.web.traceback FILE --port 8765``).

The page is drawn from the context chain (see :mod:`otrace.web.traceback_core`), never from
live frames.  Its gates, checked before anything else:

* the ``Host`` header must name a trusted host (loopback names by default);
* a POST needs the per-process secret in ``X-OTrace-Secret`` (a custom header, so another
  site's page cannot send it without a CORS preflight, which is never granted), and is
  refused if ``Origin`` or ``Sec-Fetch-Site`` show it comes from another site;
* evaluating needs the PIN announced on the operator's console (``pin=False`` turns this
  off explicitly); ten wrong PINs lock the page until the process restarts;
* only ``max_tracebacks`` opened pages keep their frames; older ones are dropped.

Evaluations run in their own daemon threads (``IOLoop.run_in_executor``), so the server keeps
serving other clients; one still running after ``eval_timeout`` seconds is reported as such.

Threads: handlers run on the event-loop thread; :func:`traceback_url` may be called from any
thread (the shell's).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import re
import secrets
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future
from typing import Any
from urllib.parse import quote, urlsplit

import tornado.ioloop
import tornado.web

from otrace.contexts import TraceContext
from otrace.contexts import capture as _capture
from otrace.contexts.record import parse_trace_id
from otrace.errors import OTraceError
from otrace.log import announce, get_logger
from otrace.runtime import Runtime, default
from otrace.web import traceback_render as _render
from otrace.web.traceback_core import (
    ContextSource,
    EvalResult,
    PageSession,
    SessionTable,
    context_id,
    evaluate,
    open_session,
    sort_ids,
)

__all__ = [
    "ContextSource",
    "TracebackServer",
    "capture_handler_exception",
    "live_source",
    "make_app",
    "pickled_source",
    "serve_postmortem",
    "traceback_url",
]

log = get_logger("web.traceback")

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PREFIX = "/__otrace__/tb"
DEFAULT_TRUSTED_HOSTS = ("localhost", "127.0.0.1", "::1")
SECRET_HEADER = "X-OTrace-Secret"
MAX_PIN_FAILURES = 10
MAX_CODE = 100_000
CONTEXT_LINES = 11

_loader = _render.loader
_asset = _render.asset


# -- sources -------------------------------------------------------------------------------
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


# -- evaluation threads ---------------------------------------------------------------------
class _DaemonExecutor(Executor):
    """One daemon thread per evaluation, at most ``limit`` at a time.

    Daemon threads, so an evaluation that never ends cannot keep the process from exiting.
    """

    def __init__(self, limit: int = 8) -> None:
        self._slots = threading.BoundedSemaphore(limit)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if not self._slots.acquire(blocking=False):
            raise RuntimeError("too many evaluations are still running")
        fut: Future = Future()

        def run() -> None:
            try:
                if fut.set_running_or_notify_cancel():
                    try:
                        fut.set_result(fn(*args, **kwargs))
                    except BaseException as exc:
                        fut.set_exception(exc)
            finally:
                self._slots.release()

        threading.Thread(target=run, name="otrace-tb-eval", daemon=True).start()
        return fut


# -- the server ------------------------------------------------------------------------------
def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


class TracebackServer:
    """The page's state: its source of contexts, secret, PIN, sessions and gates.

    :param source: where contexts are looked up by trace id (default: this process's store).
    :param prefix: URL path the page's routes live under.
    :param pin: True for a random PIN (announced to the operator), a string for a fixed
        one, False to evaluate without a PIN (the secret and host checks remain).
    :param trusted_hosts: host names accepted in the ``Host`` header; an entry starting
        with ``.`` also accepts its subdomains.
    :param max_tracebacks: opened pages whose frames are kept (oldest dropped).
    :param eval_timeout: seconds to wait for an evaluation before answering that it runs on.
    :param base_url: ``scheme://host:port`` for absolute URLs (else learnt from requests).

    Created and used on the event-loop thread; :meth:`url_for` may be called from any thread.
    """

    def __init__(
        self,
        source: ContextSource | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        pin: bool | str = True,
        trusted_hosts: Iterable[str] = DEFAULT_TRUSTED_HOSTS,
        max_tracebacks: int = 16,
        eval_timeout: float = 10.0,
        base_url: str | None = None,
        announce_pin: bool = True,
    ) -> None:
        self.source = source or live_source()
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.trusted_hosts = tuple(h.lower().strip("[]") for h in trusted_hosts)
        self.sessions = SessionTable(max_tracebacks)
        self.eval_timeout = eval_timeout
        self.base_url = base_url.rstrip("/") if base_url else None
        self.secret = secrets.token_urlsafe(24)
        if pin is True:
            digits = f"{secrets.randbelow(10**9):09d}"
            self.pin: str | None = f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
        elif pin:
            self.pin = str(pin)
        else:
            self.pin = None
        self.cookie_name = "otrace_tb_" + secrets.token_hex(4)
        self._tokens: set[str] = set()
        self._pin_failures = 0
        self._executor = _DaemonExecutor()
        self._debug_classes: dict[type, type] = {}
        if announce_pin:
            self.announce_pin()

    # -- URLs --------------------------------------------------------------------------
    def url_for(self, ctx: Mapping[str, Any] | str) -> str:
        """The page URL for a context or trace id (absolute once the base URL is known)."""
        tid = ctx if isinstance(ctx, str) else context_id(ctx)
        path = f"{self.prefix}/ctx/{quote(tid, safe='')}"
        return (self.base_url or "") + path

    def index_url(self) -> str:
        return (self.base_url or "") + self.prefix + "/"

    def announce_pin(self) -> None:
        where = self.index_url()
        if self.pin:
            announce(f"otrace traceback page {where}  PIN: {self.pin}", logging.WARNING)
        else:
            announce(f"otrace traceback page {where}  (PIN disabled)")

    def routes(self) -> list[tuple[str, type, dict[str, Any]]]:
        """The page's Tornado routes, for ``Application(handlers)`` or ``add_handlers``."""
        kw = {"server": self}
        p = re.escape(self.prefix)
        return [
            (p + r"/?", _IndexHandler, kw),
            (p + r"/ctx/(.+)", _ContextHandler, kw),
            (p + r"/pin", _PinHandler, kw),
            (p + r"/eval", _EvalHandler, kw),
        ]

    # -- gates -------------------------------------------------------------------------
    def check_host(self, request: Any) -> str | None:
        """None if the ``Host`` header names a trusted host, else why not."""
        name = _host_name(request.headers.get("Host", ""))
        if not name:
            return "missing Host header"
        for trusted in self.trusted_hosts:
            if (
                trusted == "*"
                or name == trusted
                or (trusted.startswith(".") and (name.endswith(trusted) or name == trusted[1:]))
            ):
                return None
        return f"untrusted host {name!r}"

    def check_post(self, request: Any) -> str | None:
        """None if a POST may proceed: trusted host, same origin, right secret."""
        why = self.check_host(request)
        if why:
            return why
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return f"cross-site request ({site})"
        origin = request.headers.get("Origin")
        if origin is not None:
            parts = urlsplit(origin)
            if origin == "null" or (parts.scheme, parts.netloc.lower()) != (
                request.protocol,
                request.host.lower(),
            ):
                return f"cross-origin request from {origin}"
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return "missing or wrong secret"
        return None

    def is_authorized(self, handler: tornado.web.RequestHandler) -> bool:
        """True if evaluation is allowed for this browser (PIN given, or no PIN)."""
        if self.pin is None:
            return True
        token = handler.get_cookie(self.cookie_name) or ""
        return any(hmac.compare_digest(token, t) for t in self._tokens)

    def try_pin(self, pin: str) -> str | None:
        """A new auth token if ``pin`` is right; None otherwise.  Raises when locked."""
        if self.pin is None:
            return secrets.token_urlsafe(32)
        if self._pin_failures >= MAX_PIN_FAILURES:
            raise OTraceError("too many wrong PINs; restart the process to try again")
        norm = re.sub(r"\D", "", pin)
        if norm and hmac.compare_digest(norm, re.sub(r"\D", "", self.pin)):
            token = secrets.token_urlsafe(32)
            self._tokens.add(token)
            return token
        self._pin_failures += 1
        return None

    def learn_base(self, request: Any) -> None:
        if self.base_url is None and self.check_host(request) is None:
            self.base_url = f"{request.protocol}://{request.host}"

    # -- pages -------------------------------------------------------------------------
    def open(self, ctx: Mapping[str, Any], *, live: bool | None = None) -> PageSession:
        """Open a page session on a context (its frames are kept until dropped)."""
        session = open_session(ctx, live=self.source.live if live is None else live)
        self.sessions.add(session)
        return session

    def render_page(self, session: PageSession, handler: tornado.web.RequestHandler) -> bytes:
        """The interactive page for an opened session (sets the security headers)."""
        nonce = _security_headers(handler)
        return _loader.load("tb_page.html").generate(
            s=session,
            nonce=nonce,
            css=_asset("tb.css"),
            js=_asset("tb.js"),
            secret=self.secret,
            eval_url=self.prefix + "/eval",
            pin_url=self.prefix + "/pin",
            index_url=self.prefix + "/",
            interactive=True,
            need_pin=not self.is_authorized(handler),
            pin_enabled=self.pin is not None,
            source_label=self.source.label,
        )

    async def run_eval(self, session: PageSession, index: int, code: str) -> EvalResult:
        """Evaluate ``code`` in frame ``index`` of ``session`` in a worker thread."""
        frame = session.frames[index]
        loop = tornado.ioloop.IOLoop.current()
        try:
            program_loop = asyncio.get_running_loop() if session.live else None  # for await
            fut = loop.run_in_executor(
                self._executor, evaluate, code, frame, program_loop, self.eval_timeout
            )
        except RuntimeError as exc:
            return EvalResult(error=str(exc))
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.eval_timeout)
        except TimeoutError:
            return EvalResult(
                error=f"still running after {self.eval_timeout:g} s; it goes on "
                "in the background and its output will not be shown"
            )

    # -- application errors --------------------------------------------------------------
    def debug_class(self, cls: Any) -> Any:
        """``cls`` with the interactive error page mixed in (cached), or ``cls`` itself."""
        if (
            not isinstance(cls, type)
            or not issubclass(cls, tornado.web.RequestHandler)
            or issubclass(cls, (_TbHandler, _DebugErrorMixin, *_plain_handlers()))
        ):
            return cls
        sub = self._debug_classes.get(cls)
        if sub is None:
            sub = type(
                cls.__name__,
                (_DebugErrorMixin, cls),
                {
                    "__module__": cls.__module__,
                    "__qualname__": cls.__qualname__,
                    "_otrace_tb": self,
                },
            )
            self._debug_classes[cls] = sub
        return sub

    def render_exception(self, handler: tornado.web.RequestHandler, exc_info: Any) -> bytes | None:
        """Capture a handler's exception as a context and render its page (None: no page)."""
        self.learn_base(handler.request)
        ctx = capture_handler_exception(
            handler, exc_info, say=[lambda c: f"{c.id}  {self.url_for(c)}"]
        )
        if self.check_host(handler.request) is not None:
            return None
        return self.render_page(self.open(ctx, live=True), handler)


def _plain_handlers() -> tuple[type, ...]:
    """Handlers left alone: their errors are not program bugs, or they keep class state."""
    plain: list[type] = [
        tornado.web.StaticFileHandler,
        tornado.web.RedirectHandler,
        tornado.web.ErrorHandler,
    ]
    ws = sys.modules.get("tornado.websocket")
    if ws is not None:
        plain.append(ws.WebSocketHandler)
    return tuple(plain)


def _security_headers(handler: tornado.web.RequestHandler) -> str:
    nonce = secrets.token_urlsafe(16)
    handler.set_header(
        "Content-Security-Policy",
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'",
    )
    handler.set_header("X-Frame-Options", "DENY")
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Referrer-Policy", "no-referrer")
    handler.set_header("Cache-Control", "no-store")
    return nonce


def capture_handler_exception(
    handler: tornado.web.RequestHandler,
    exc_info: Any,
    say: Iterable[str | Callable[[TraceContext], str]] = (),
) -> TraceContext:
    """Snapshot an uncaught handler exception into ``/osh/recent/exceptions``.

    The context is named ``<Handler>.<method>`` with the label ``<ExcName>``; its ``__trc``
    also records the request line.  Recorded by the default runtime's recorder, which
    announces ``say`` (lines or ``f(ctx)``).  Called on the event-loop thread.
    """
    recorder = default().recorder
    exc_type, exc, tb = exc_info
    values, trc = _capture.capture_exception(
        exc, tb, None, context_lines=CONTEXT_LINES, deep=recorder.params.deep_copy
    )
    trc["request"] = f"{handler.request.method} {handler.request.uri}"
    name = f"{type(handler).__name__}.{(handler.request.method or 'get').lower()}"
    ctx, _ = recorder.record(
        "exceptions", name, exc_type.__name__, values, trc, say=say, truncate=False
    )
    return ctx


class _DebugErrorMixin(tornado.web.RequestHandler):
    """Mixed into an application's handlers: uncaught errors render the interactive page."""

    _otrace_tb: TracebackServer

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        if (
            exc_info
            and exc_info[1] is not None
            and self.settings.get("debug")
            and not isinstance(exc_info[1], tornado.web.HTTPError)
        ):
            try:
                page = self._otrace_tb.render_exception(self, exc_info)
            except Exception:
                log.exception("rendering the traceback page failed")
                page = None
            if page is not None:
                self.set_header("Content-Type", "text/html; charset=UTF-8")
                self.finish(page)
                return
        super().write_error(status_code, **kwargs)


# -- handlers --------------------------------------------------------------------------------
class _TbHandler(tornado.web.RequestHandler):
    """Every page route: the host gate first, our own cross-site checks instead of XSRF."""

    server: TracebackServer

    def initialize(self, server: TracebackServer) -> None:
        self.server = server

    def prepare(self) -> None:
        why = self.server.check_host(self.request)
        if why:
            self.refuse(why)
            return
        self.server.learn_base(self.request)

    def check_xsrf_cookie(self) -> None:
        """Replaced by :meth:`TracebackServer.check_post` (secret header and origin)."""

    def refuse(self, why: str, status: int = 403, **extra: Any) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish({"error": why, **extra})

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"error": self._reason})


class _IndexHandler(_TbHandler):
    def get(self) -> None:
        rows = []
        for tid in sort_ids(self.server.source.list_ids()):
            try:
                kind, name, ctxid, ts = parse_trace_id(tid)
            except ValueError:
                continue
            rows.append((kind, name, ctxid, ts, self.server.url_for(tid)))
        nonce = _security_headers(self)
        self.finish(
            _loader.load("tb_index.html").generate(
                rows=rows, nonce=nonce, css=_asset("tb.css"), source_label=self.server.source.label
            )
        )


class _ContextHandler(_TbHandler):
    def get(self, trace_id: str) -> None:
        try:
            ctx = self.server.source.get(trace_id)
        except OTraceError as exc:
            self.refuse(str(exc), 500)
            return
        if ctx is None:
            self.refuse(f"no trace context {trace_id}", 404)
            return
        session = self.server.open(ctx)
        self.finish(self.server.render_page(session, self))


class _JsonPost(_TbHandler):
    def body(self) -> dict[str, Any] | None:
        why = self.server.check_post(self.request)
        if why:
            self.refuse(why)
            return None
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self.refuse("expected a JSON object", 400)
            return None
        return data


class _PinHandler(_JsonPost):
    def post(self) -> None:
        data = self.body()
        if data is None:
            return
        try:
            token = self.server.try_pin(str(data.get("pin", "")))
        except OTraceError as exc:
            self.refuse(str(exc), 429)
            return
        if token is None:
            self.refuse("wrong PIN", need_pin=True)
            return
        self.set_cookie(
            self.server.cookie_name,
            token,
            path=self.server.prefix + "/",
            httponly=True,
            samesite="Strict",
        )
        self.finish({"ok": True})


class _EvalHandler(_JsonPost):
    async def post(self) -> None:
        data = self.body()
        if data is None:
            return
        if not self.server.is_authorized(self):
            self.refuse("enter the PIN shown on the server's console first", need_pin=True)
            return
        session = self.server.sessions.get(str(data.get("session", "")))
        if session is None:
            self.refuse(
                "this page's frames were dropped (too many tracebacks opened since); "
                "reload the page",
                410,
            )
            return
        index, code = data.get("frame"), data.get("code")
        if not isinstance(index, int) or not 0 <= index < len(session.frames):
            self.refuse("no such frame", 400)
            return
        if not isinstance(code, str) or len(code) > MAX_CODE:
            self.refuse("no code, or too much", 400)
            return
        result = await self.server.run_eval(session, index, code)
        self.set_header("Cache-Control", "no-store")
        self.finish(result.as_json())


def traceback_url(ctx: Mapping[str, Any] | str) -> str | None:
    """The page URL for a context or trace id, or None if no page is being served.

    For the shell to print next to a context.  Safe from any thread.
    """
    server = default().traceback_server
    return server.url_for(ctx) if server is not None else None


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


if __name__ == "__main__":
    sys.exit(main())
