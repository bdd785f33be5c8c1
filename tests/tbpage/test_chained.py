"""A chained exception (raise ... from ...) on the traceback page in real Chromium, and in
the shell: every exception of the chain is its own group of frames, each evaluable."""

from __future__ import annotations

import asyncio
import io

import pytest
import tornado.web

import otrace
import otrace.tornado as otornado
from tests.rt import STORE

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def parse_amount(text):
    digits_only = text.strip()
    return int(digits_only)


def load_order(order_id):
    raise KeyError(order_id)


class ChainedHandler(tornado.web.RequestHandler):
    def get(self):
        amount_text = "x12"
        try:
            parse_amount(amount_text)
        except ValueError as exc:
            raise RuntimeError(f"bad amount {amount_text!r}") from exc


class ContextHandler(tornado.web.RequestHandler):
    def get(self):
        try:
            load_order("o-7")
        except KeyError:
            fallback = None
            fallback.total  # noqa: B018 - an error while handling another


def make_app():
    app = tornado.web.Application(
        [(r"/chained/", ChainedHandler), (r"/context/", ContextHandler)],
        debug=True,
        autoreload=False,
    )
    return app, otornado.enable_tracebacks(app, pin=False)


def group_titles(page):
    return [t.strip() for t in page.locator(".tb-exc").all_inner_texts()]


def test_cause_and_context_groups_in_chromium(serve, page):
    srv = serve(make_app)
    resp = page.goto(srv.url("/chained/"))
    assert resp.status == 500
    assert page.locator(".tb-title").inner_text() == "RuntimeError: bad amount 'x12'"
    titles = group_titles(page)
    assert titles == [
        "ValueError: invalid literal for int() with base 10: 'x12'",
        "RuntimeError: bad amount 'x12'",
    ], titles
    assert "direct cause of the following exception" in page.locator(".tb-relation").inner_text()
    # the frame where the cause happened is shown, with its locals, and evaluates
    parse = page.locator(".tb-frame", has=page.locator(".tb-func", has_text="parse_amount"))
    assert parse.count() == 1
    assert "int(digits_only)" in parse.locator(".tb-cur").inner_text()
    assert "raised here" in parse.locator("summary").first.inner_text()
    box = parse.locator("textarea")
    box.fill("digits_only * 2")
    box.press("Enter")
    parse.locator(".tb-value", has_text="'x12x12'").wait_for()
    # await works on a live page: it runs on the server's loop
    box.fill("await asyncio.sleep(0.05, 'awaited ' + digits_only)")
    box.press("Enter")
    parse.locator(".tb-value", has_text="'awaited x12'").wait_for()
    assert asyncio  # the page evaluates in this module's globals
    # the handler frame appears in both groups: each copy evaluates on its own
    gets = page.locator(".tb-frame", has=page.locator(".tb-func", has_text="get"))
    assert gets.count() == 2
    last = gets.nth(1)
    last.locator("textarea").fill("amount_text.upper()")
    last.locator("textarea").press("Enter")
    last.locator(".tb-value", has_text="'X12'").wait_for()

    resp = page.goto(srv.url("/context/"))
    assert resp.status == 500
    assert group_titles(page) == [
        "KeyError: 'o-7'",
        "AttributeError: 'NoneType' object has no attribute 'total'",
    ]
    assert "During handling of the above exception" in page.locator(".tb-relation").inner_text()


def test_cause_browsable_in_the_shell(serve):
    srv = serve(make_app)
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(srv.url("/chained/"), timeout=10)
    (ctx,) = STORE.find(["ChainedHandler.get:ex-RuntimeError:*"])
    assert ctx.trc["exc_chain"] == [
        ("__cause__", "ValueError: invalid literal for int() with base 10: 'x12'")
    ]
    g = {"__name__": "chained_test"}
    shell = otrace.OShell(
        g, g, allow_unsafe=True, _stdin=io.StringIO(), _stdout=io.StringIO(), _stderr=io.StringIO()
    )
    try:
        out, err = shell.execute(f"cd ~{ctx.id}")
        assert not err, err
        out, err = shell.execute("ls")
        assert "__cause__" in out, out
        out, err = shell.execute("cd __cause__")
        assert not err, err
        out, err = shell.execute("pr digits_only")
        assert out.strip() == "'x12'" or out.strip() == "x12", (out, err)
        out, err = shell.execute("pr __trc['exception']")
        assert "ValueError" in out, (out, err)
        out, err = shell.execute("cd __up; pr amount_text")
        assert out.strip() == "x12", (out, err)
    finally:
        shell.shutdown()


def test_await_refused_on_a_post_mortem_page():
    from otrace.web.traceback_core import evaluate, open_session

    try:
        parse_amount("x")
    except ValueError as exc:
        from otrace.contexts.capture import capture_exception

        values, trc = capture_exception(exc, exc.__traceback__, None)
    session = open_session({**values, "__trc": trc}, live=False)
    result = evaluate("await asyncio.sleep(0)", session.frames[-1], loop=None)
    assert result.error == "await works on live pages only (nothing runs this program's loop)"
    assert evaluate("digits_only + '!'", session.frames[-1]).value == "'x!'"
