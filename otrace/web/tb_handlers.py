"""The traceback page's Tornado handlers, and the pages they render.

Every route checks the ``Host`` first; then, until the browser has given the PIN, every GET
answers with the PIN form and nothing else (see :mod:`otrace.web.tb_gates`).  Application
handlers get :class:`DebugErrorMixin` mixed in, so an uncaught error renders the page (or,
before the PIN, the form that leads to it).

Threads: the event-loop thread, as Tornado calls them.
"""

from __future__ import annotations

import json
import secrets
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import tornado.web

from otrace.contexts.record import parse_trace_id
from otrace.errors import OTraceError
from otrace.log import get_logger
from otrace.web import traceback_render as _render
from otrace.web.tb_gates import Throttled
from otrace.web.traceback_core import PageSession, sort_ids

if TYPE_CHECKING:
    from otrace.web.traceback import TracebackServer

log = get_logger("web.traceback")

MAX_CODE = 100_000

_loader = _render.loader  # templates and static files, shared with the notebook's rendering
asset = _render.asset


def security_headers(handler: tornado.web.RequestHandler) -> str:
    """Set the page's security headers; the CSP nonce for its inline style and script."""
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


def render_page(
    server: TracebackServer, session: PageSession, handler: tornado.web.RequestHandler
) -> bytes:
    """The interactive page of an opened session (for a browser past the PIN)."""
    nonce = security_headers(handler)
    return _loader.load("tb_page.html").generate(
        s=session,
        nonce=nonce,
        css=asset("tb.css"),
        js=asset("tb.js"),
        secret=server.secret,
        eval_url=server.prefix + "/eval",
        pin_url=server.prefix + "/pin",
        index_url=server.prefix + "/",
        interactive=True,
        need_pin=not server.is_authorized(handler),
        pin_enabled=server.pin is not None,
        source_label=server.source.label,
    )


def render_pin_form(
    server: TracebackServer,
    handler: tornado.web.RequestHandler,
    next_url: str,
    message: str = "",
    title: str = "This page needs the PIN",
) -> bytes:
    """The PIN form: all a browser gets before the PIN (no locals, ids or secret)."""
    nonce = security_headers(handler)
    # with no-referrer a browser posts the form with "Origin: null"; same-origin keeps the
    # origin check of /pin meaningful and still sends nothing to other sites
    handler.set_header("Referrer-Policy", "same-origin")
    return _loader.load("tb_pin.html").generate(
        nonce=nonce,
        css=asset("tb.css"),
        title=title,
        pin_url=server.prefix + "/pin",
        token=server.gates.form_token,
        next_url=next_url,
        message=message,
    )


def plain_handlers() -> tuple[type, ...]:
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


class DebugErrorMixin(tornado.web.RequestHandler):
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


class TbHandler(tornado.web.RequestHandler):
    """Every page route: the host gate first, our own cross-site checks instead of XSRF."""

    server: TracebackServer
    needs_pin = True  # GETs answer with the PIN form until the browser has given the PIN

    def initialize(self, server: TracebackServer) -> None:
        self.server = server

    def prepare(self) -> None:
        why = self.server.check_host(self.request)
        if why:
            self.refuse(why)
            return
        self.server.learn_base(self.request)
        if self.request.method == "GET" and self.needs_pin and not self.server.is_authorized(self):
            self.set_status(403)
            self.finish(render_pin_form(self.server, self, self.request.path))

    def check_xsrf_cookie(self) -> None:
        """Replaced by :meth:`Gates.check_post` (secret header or form token, and origin)."""

    def refuse(self, why: str, status: int = 403, **extra: Any) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish({"error": why, **extra})

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"error": self._reason})


class IndexHandler(TbHandler):
    def get(self) -> None:
        rows = []
        for tid in sort_ids(self.server.source.list_ids()):
            try:
                kind, name, ctxid, ts = parse_trace_id(tid)
            except ValueError:
                continue
            rows.append((kind, name, ctxid, ts, self.server.url_for(tid)))
        nonce = security_headers(self)
        self.finish(
            _loader.load("tb_index.html").generate(
                rows=rows, nonce=nonce, css=asset("tb.css"), source_label=self.server.source.label
            )
        )


class ContextHandler(TbHandler):
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
        self.finish(render_page(self.server, session, self))


class JsonPost(TbHandler):
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


class PinHandler(JsonPost):
    """``/pin``: the PIN form (form-encoded, then a redirect) or the page's script (JSON)."""

    def post(self) -> None:
        if self.request.headers.get("Content-Type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            self._form()
            return
        data = self.body()
        if data is None:
            return
        token = self._try(str(data.get("pin", "")))
        if token is None:
            return
        self._grant(token)
        self.finish({"ok": True})

    def _form(self) -> None:
        fields = parse_qs(self.request.body.decode("utf-8", "replace"), max_num_fields=10)
        value = {k: v[0] for k, v in fields.items() if v}
        why = self.server.gates.check_post(self.request, token=value.get("token", ""))
        if why:
            self.refuse(why)
            return
        prefix = self.server.prefix + "/"
        next_url = value.get("next", prefix)
        if not next_url.startswith(prefix) or "//" in next_url or "\\" in next_url:
            next_url = prefix  # only pages of this server
        try:
            token = self.server.gates.try_pin(value.get("pin", ""), self.request.remote_ip or "")
        except Throttled as exc:
            self.set_status(429)
            self.set_header("Retry-After", str(int(exc.wait) + 1))
            self.finish(render_pin_form(self.server, self, next_url, str(exc)))
            return
        if token is None:
            self.set_status(403)
            self.finish(render_pin_form(self.server, self, next_url, "wrong PIN"))
            return
        self._grant(token)
        self.redirect(next_url, status=303)

    def _try(self, pin: str) -> str | None:
        try:
            token = self.server.gates.try_pin(pin, self.request.remote_ip or "")
        except Throttled as exc:
            self.set_header("Retry-After", str(int(exc.wait) + 1))
            self.refuse(str(exc), 429)
            return None
        if token is None:
            self.refuse("wrong PIN", need_pin=True)
        return token

    def _grant(self, token: str) -> None:
        self.set_cookie(
            self.server.cookie_name,
            token,
            path=self.server.prefix + "/",
            httponly=True,
            samesite="Strict",
        )


class EvalHandler(JsonPost):
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
