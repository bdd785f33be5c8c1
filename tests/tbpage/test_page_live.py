"""A failing handler of a real Tornado app, opened in real Chromium."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request

import pytest
import tornado.web

import otrace.tornado as otornado
from otrace.web import traceback as tbweb
from tests.rt import STORE

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

GATE = threading.Event()


def helper(n):
    inner_local = n * 2
    raise ValueError(f"boom {inner_local}")


class IndexHandler(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world!")


class BrokenHandler(tornado.web.RequestHandler):
    def get(self):
        marker = "outer-value-42"
        helper(3)
        self.write(marker)


def make_app(debug=True, **options):
    def make():
        app = tornado.web.Application(
            [(r"/", IndexHandler), (r"/error/", BrokenHandler)], debug=debug, autoreload=False
        )
        server = otornado.enable_tracebacks(app, **options)
        return app, server

    return make


def frame(page, funcname):
    loc = page.locator(".tb-frame", has=page.locator(".tb-func", has_text=funcname))
    assert loc.count() == 1
    return loc


def run(page, fr, code):
    box = fr.locator("textarea")
    box.fill(code)
    box.press("Enter")


def http(url, *, method="GET", headers=None, body=None):
    req = urllib.request.Request(
        url,
        method=method,
        headers=headers or {},
        data=json.dumps(body).encode() if body is not None else None,
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read().decode()


def test_error_page_frames_pin_and_eval_in_outer_frame(serve, page, announcements):
    srv = serve(make_app())
    server = srv.extra
    assert any(server.pin in said for said in announcements)

    # before the PIN: the form and nothing else (no frames, locals or secret)
    resp = page.goto(srv.url("/error/"))
    assert resp.status == 500
    assert page.locator("#tb-pin-page").is_visible()
    content = page.content()
    assert page.locator(".tb-frame").count() == 0 and "outer-value-42" not in content
    assert server.secret not in content and "data-session" not in content
    page.fill("#tb-pin-input", "000-000-000")
    page.click("#tb-pin-page button")
    page.locator("#tb-pin-msg", has_text="wrong PIN").wait_for()
    page.fill("#tb-pin-input", server.pin)
    page.click("#tb-pin-page button")  # then the index, newest first
    page.locator(".tb-index a", has_text="BrokenHandler.get").first.click()
    page.locator(".tb-title", has_text="ValueError: boom 6").wait_for()
    assert page.locator(".tb-frame:visible").count() == 2  # tornado's own frame is hidden
    get = frame(page, "get")
    assert "marker = " in get.locator(".tb-src").inner_text()
    assert "helper(3)" in get.locator(".tb-cur").inner_text()
    inner = frame(page, "helper")
    assert "inner_local" in inner.locator(".tb-locals").inner_text()
    assert not page.locator("#tb-pin").is_visible()  # the PIN cookie holds
    run(page, get, "marker.upper()")
    get.locator(".tb-value", has_text="'OUTER-VALUE-42'").wait_for()

    # statements keep their names in this page's copy of the frame; print is captured
    run(page, get, "x = len(marker)")
    run(page, get, "print('len is', x); x + 1")
    get.locator(".tb-stdout", has_text="len is 14").wait_for()
    get.locator(".tb-value", has_text="15").wait_for()
    run(page, inner, "inner_local / 0")
    inner.locator(".tb-err", has_text="ZeroDivisionError").wait_for()

    # the same exception is a trace context in /osh/recent, and its URL opens a page
    ctxs = STORE.find(["BrokenHandler.get:ex-ValueError:*"])
    assert len(ctxs) == 1
    assert ctxs[0]["__up"]["marker"] == "outer-value-42"
    url = tbweb.traceback_url(ctxs[0])
    assert url == server.url_for(ctxs[0]) and url.startswith(srv.url("/__otrace__/tb/ctx/"))
    page.goto(url)
    assert page.locator(".tb-title").inner_text() == "ValueError: boom 6"
    assert not page.locator("#tb-pin").is_visible()  # the PIN cookie still holds
    run(page, frame(page, "get"), "marker")
    frame(page, "get").locator(".tb-value", has_text="'outer-value-42'").wait_for()

    page.goto(srv.url("/__otrace__/tb/"))
    assert "BrokenHandler.get" in page.locator(".tb-index").inner_text()


def test_long_evaluation_does_not_freeze_the_server(serve, page):
    GATE.clear()
    srv = serve(make_app(pin=False, eval_timeout=30))
    page.goto(srv.url("/error/"))
    run(page, frame(page, "helper"), "GATE.wait(60)")
    # while that evaluation waits, other clients are served
    assert http(srv.url("/")) == (200, "Hello, world!")
    GATE.set()
    frame(page, "helper").locator(".tb-value", has_text="True").wait_for()


def test_evaluation_past_the_timeout_is_reported(serve, page):
    gate = threading.Event()
    helper.__globals__["SLOW_GATE"] = gate
    try:
        srv = serve(make_app(pin=False, eval_timeout=0.2))
        page.goto(srv.url("/error/"))
        run(page, frame(page, "helper"), "SLOW_GATE.wait(60)")
        frame(page, "helper").locator(".tb-err", has_text="still running").wait_for()
    finally:
        gate.set()
        del helper.__globals__["SLOW_GATE"]


def test_untrusted_host_is_refused(serve, page):
    srv = serve(make_app())
    resp = page.goto(srv.url("/__otrace__/tb/", host="evil.test"))
    assert resp.status == 403 and "untrusted host" in page.content()
    resp = page.goto(srv.url("/error/", host="evil.test"))
    assert resp.status == 500
    assert page.locator(".tb-frame").count() == 0  # Tornado's plain page, no secret in it
    assert len(STORE.find(["BrokenHandler.get:*"])) == 1  # but the context is recorded


def test_posts_need_secret_pin_and_same_origin(serve, page):
    srv = serve(make_app())
    server = srv.extra
    page.goto(srv.url("/error/"))
    page.fill("#tb-pin-input", server.pin)  # the browser signs in; plain requests below do not
    page.click("#tb-pin-page button")
    page.locator(".tb-index a", has_text="BrokenHandler.get").first.click()
    page.locator(".tb-frame:visible").first.wait_for()
    session = page.locator("#otrace-tb").get_attribute("data-session")
    body = {"session": session, "frame": 1, "code": "1 + 1"}
    evil = srv.url("/__otrace__/tb/eval")
    ok_headers = {"X-OTrace-Secret": server.secret, "Content-Type": "application/json"}

    assert http(evil, method="POST", body=body)[0] == 403  # no secret
    status, text = http(
        evil, method="POST", body=body, headers={**ok_headers, "X-OTrace-Secret": "x"}
    )
    assert status == 403 and "secret" in text
    status, text = http(evil, method="POST", body=body, headers=ok_headers)
    assert status == 403 and json.loads(text)["need_pin"]  # secret but no PIN
    pin_url = srv.url("/__otrace__/tb/pin")
    status, text = http(
        pin_url,
        method="POST",
        body={"pin": server.pin},
        headers={**ok_headers, "Origin": "http://evil.test"},
    )
    assert status == 403 and "cross-origin" in text
    status, text = http(
        pin_url,
        method="POST",
        body={"pin": server.pin},
        headers={**ok_headers, "Sec-Fetch-Site": "cross-site"},
    )
    assert status == 403 and "cross-site" in text
    status, text = http(
        pin_url,
        method="POST",
        body={"pin": server.pin},
        headers={**ok_headers, "Host": "evil.test"},
    )
    assert status == 403 and "untrusted host" in text

    # from another origin in the browser: the custom header needs a preflight, never granted
    page.goto(srv.url("/", host="127.0.0.1"))
    outcome = page.evaluate(
        """async ([url, secret, body]) => {
            try {
                const r = await fetch(url, {method: "POST", body: JSON.stringify(body),
                    headers: {"X-OTrace-Secret": secret, "Content-Type": "application/json"}});
                return "status " + r.status;
            } catch (e) { return "blocked"; }
        }""",
        [srv.url("/__otrace__/tb/pin"), server.secret, {"pin": server.pin}],
    )
    assert outcome == "blocked"
    assert len(server._tokens) == 1  # only the browser's own sign-in above


def test_wrong_pins_are_throttled_per_client_not_for_everyone(serve):
    """Ten wrong PINs used to lock everyone out until restart (a denial of service)."""
    from otrace.web.tb_gates import FREE_TRIES

    srv = serve(make_app())
    server = srv.extra
    headers = {"X-OTrace-Secret": server.secret, "Content-Type": "application/json"}
    url = srv.url("/__otrace__/tb/pin")
    for _ in range(FREE_TRIES):
        assert http(url, method="POST", body={"pin": "1"}, headers=headers)[0] == 403
    # this client now waits, growing with each wrong try; the right PIN waits too
    status, text = http(url, method="POST", body={"pin": server.pin}, headers=headers)
    assert status == 429 and "try again in" in text
    # another client is not held up
    status, text = http_from(
        "127.0.0.2", srv.port, "/__otrace__/tb/pin", {"pin": server.pin}, headers
    )
    assert status == 200 and json.loads(text) == {"ok": True}
    assert [c for c, _, _ in server.gates.throttled()] == ["127.0.0.1"]
    # the operator resets the throttle from the shell
    from otrace.shell.session import Session

    sh = Session({"__name__": "tbreset"})  # the default runtime: the page is its own
    try:
        assert "1 client" in sh.execute("tbpage -r").out
    finally:
        sh.close()
    status, text = http(url, method="POST", body={"pin": server.pin}, headers=headers)
    assert status == 200


def http_from(source_ip, port, path, body, headers):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source_ip, 0))
    try:
        conn.request("POST", path, body=json.dumps(body), headers={**headers, "Host": "localhost"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_frames_kept_for_a_bounded_number_of_pages(serve, page):
    srv = serve(make_app(pin=False, max_tracebacks=2))
    page.goto(srv.url("/error/"))
    first = page.locator("#otrace-tb").get_attribute("data-session")
    other = page.context.new_page()
    other.goto(srv.url("/error/"))
    other.goto(srv.url("/error/"))
    other.close()
    assert first not in {s for s in srv.extra.sessions._items}
    run(page, frame(page, "helper"), "inner_local")
    frame(page, "helper").locator(".tb-err", has_text="reload the page").wait_for()


def test_without_debug_nothing_changes(serve, page):
    srv = serve(make_app(debug=False))
    assert srv.extra is None
    resp = page.goto(srv.url("/error/"))
    assert resp.status == 500 and page.locator(".tb-frame").count() == 0
    assert page.goto(srv.url("/__otrace__/tb/")).status == 404
    assert STORE.find(["*"]) == []


class AsyncBrokenHandler(tornado.web.RequestHandler):
    async def post(self):
        await asyncio.sleep(0)
        payload = self.request.body.decode()
        raise KeyError(payload)


def test_async_handler_and_enable_twice(serve):
    def make():
        app = tornado.web.Application(
            [
                (r"/async/", AsyncBrokenHandler),
                (r"/old/", tornado.web.RedirectHandler, {"url": "/"}),
            ],
            debug=True,
            autoreload=False,
        )
        server = otornado.enable_tracebacks(app, pin=False)
        assert otornado.enable_tracebacks(app) is server
        return app, server

    srv = serve(make)
    status, text = http(srv.url("/async/"), method="POST", body="xyz")
    assert status == 500 and 'class="tb-frame' in text and "KeyError" in text
    (ctx,) = STORE.find(["AsyncBrokenHandler.post:ex-KeyError:*"])
    assert ctx["payload"] == '"xyz"'
    assert srv.extra.debug_class(tornado.web.RedirectHandler) is tornado.web.RedirectHandler
