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
live frames.  Its gates (:mod:`otrace.web.tb_gates`), checked before anything else:

* the ``Host`` header must name a trusted host (loopback names by default);
* until a browser has given the PIN announced on the operator's console, every page is the
  PIN form and nothing else (``pin=False`` turns the PIN off explicitly); wrong PINs are
  throttled per client with a growing wait, and ``tbpage -r`` in the shell resets that;
* a POST needs the per-process secret in ``X-OTrace-Secret`` (a custom header, so another
  site's page cannot send it without a CORS preflight, which is never granted) -- or, for
  the PIN form, its form token -- and is refused if ``Origin`` or ``Sec-Fetch-Site`` show it
  comes from another site;
* only ``max_tracebacks`` opened pages keep their frames; older ones are dropped.

The module is split by responsibility: :mod:`.tb_sources` (where contexts come from),
:mod:`.tb_gates` (host, secret, PIN, throttle), :mod:`.tb_handlers` (routes and pages),
:mod:`.tb_postmortem` (serving a stored file; ``python -m otrace.web.traceback``); this
module keeps the server that ties them together.

Evaluations run in their own daemon threads (``IOLoop.run_in_executor``), so the server keeps
serving other clients; one still running after ``eval_timeout`` seconds is reported as such.

Threads: handlers run on the event-loop thread; :func:`traceback_url` may be called from any
thread (the shell's).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future
from typing import Any
from urllib.parse import quote

import tornado.ioloop
import tornado.web

from otrace.contexts import TraceContext
from otrace.contexts import capture as _capture
from otrace.log import announce, get_logger
from otrace.runtime import default
from otrace.web.tb_gates import DEFAULT_TRUSTED_HOSTS, SECRET_HEADER, Gates
from otrace.web.tb_handlers import (
    ContextHandler,
    DebugErrorMixin,
    EvalHandler,
    IndexHandler,
    PinHandler,
    TbHandler,
    plain_handlers,
    render_page,
    render_pin_form,
)
from otrace.web.tb_sources import live_source, pickled_source
from otrace.web.traceback_core import (
    ContextSource,
    EvalResult,
    PageSession,
    SessionTable,
    context_id,
    evaluate,
    open_session,
)

__all__ = [
    "DEFAULT_TRUSTED_HOSTS",
    "SECRET_HEADER",
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

DEFAULT_PREFIX = "/__otrace__/tb"
CONTEXT_LINES = 11


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
        self.sessions = SessionTable(max_tracebacks)
        self.eval_timeout = eval_timeout
        self.base_url = base_url.rstrip("/") if base_url else None
        self.gates = Gates(pin, trusted_hosts)
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
            announce(f"otrace traceback page {where}  (PIN disabled)", logging.WARNING)

    def routes(self) -> list[tuple[str, type, dict[str, Any]]]:
        """The page's Tornado routes, for ``Application(handlers)`` or ``add_handlers``."""
        kw = {"server": self}
        p = re.escape(self.prefix)
        return [
            (p + r"/?", IndexHandler, kw),
            (p + r"/ctx/(.+)", ContextHandler, kw),
            (p + r"/pin", PinHandler, kw),
            (p + r"/eval", EvalHandler, kw),
        ]

    # -- gates (see otrace.web.tb_gates) ------------------------------------------------
    @property
    def pin(self) -> str | None:
        return self.gates.pin

    @property
    def secret(self) -> str:
        return self.gates.secret

    @property
    def cookie_name(self) -> str:
        return self.gates.cookie_name

    @property
    def _tokens(self) -> set[str]:
        return self.gates._tokens

    def check_host(self, request: Any) -> str | None:
        return self.gates.check_host(request)

    def check_post(self, request: Any) -> str | None:
        return self.gates.check_post(request)

    def is_authorized(self, handler: tornado.web.RequestHandler) -> bool:
        return self.gates.is_authorized(handler)

    def reset_throttle(self) -> int:
        """Forget every client's wrong PINs (``tbpage -r``); how many were remembered."""
        return self.gates.reset_throttle()

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
        return render_page(self, session, handler)

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
            or issubclass(cls, (TbHandler, DebugErrorMixin, *plain_handlers()))
        ):
            return cls
        sub = self._debug_classes.get(cls)
        if sub is None:
            sub = type(
                cls.__name__,
                (DebugErrorMixin, cls),
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
        if not self.is_authorized(handler):  # before the PIN: the form, which leads to it
            # the form leads to the index (newest first), not to this context's URL, which
            # would name the handler and the error before the PIN
            return render_pin_form(
                self,
                handler,
                self.prefix + "/",
                title="An error was recorded; its page needs the PIN",
            )
        return self.render_page(self.open(ctx, live=True), handler)


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


def traceback_url(ctx: Mapping[str, Any] | str) -> str | None:
    """The page URL for a context or trace id, or None if no page is being served.

    For the shell to print next to a context.  Safe from any thread.
    """
    server = default().traceback_server
    return server.url_for(ctx) if server is not None else None


def make_app(
    source: ContextSource, **options: Any
) -> tuple[tornado.web.Application, TracebackServer]:
    """A stand-alone application serving pages for ``source`` (see :mod:`.tb_postmortem`)."""
    from otrace.web.tb_postmortem import make_app as make

    return make(source, **options)


def serve_postmortem(path: str, port: int = 8765, **options: Any) -> None:
    """Serve a stored file's contexts until stopped (see :mod:`.tb_postmortem`)."""
    from otrace.web.tb_postmortem import serve_postmortem as serve

    serve(path, port, **options)


if __name__ == "__main__":
    import sys

    from otrace.web.tb_postmortem import main

    sys.exit(main())
