"""The traceback page serves nothing but the PIN form before the PIN, whatever the Host."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest
import tornado.web

import otrace.tornado as otornado
from tests.rt import STORE
from tests.tbpage.conftest import serve  # noqa: F401 - the fixture

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Broken(tornado.web.RequestHandler):
    def get(self) -> None:
        very_private_local = "hunter2-secret-local"  # noqa: F841 - shown by the page
        raise ValueError("boom")


def make():
    app = tornado.web.Application([(r"/error/", Broken)], debug=True, autoreload=False)
    return app, otornado.enable_tracebacks(app)


def get(url: str, host: str) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read().decode()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_nothing_but_the_pin_form_before_the_pin(serve, host):  # noqa: F811
    srv = serve(make)
    server = srv.extra
    status, page = get(srv.url("/error/"), host)
    assert status == 500
    (ctx,) = STORE.find(["Broken.get:*"])
    for path in (
        "/error/",
        "/__otrace__/tb/",
        "/__otrace__/tb/ctx/" + urllib.parse.quote(ctx.id, safe=""),
    ):
        status, page = get(srv.url(path), host)
        assert 'name="pin"' in page, (path, status)
        assert "hunter2-secret-local" not in page, path
        assert server.secret not in page, path
        if "/ctx/" not in path:  # a context's own URL names it: the client asked for it
            assert ctx.id not in page and "Broken.get" not in page, path
        assert "data-session" not in page, path


@pytest.mark.timeout(60)
def test_debug_demo_binds_loopback_only():
    with open(os.path.join(ROOT, "tornademos", "debug_app.py"), encoding="utf-8") as f:
        src = f.read()
    assert re.search(r'define\("address", default="127\.0\.0\.1"', src)
    assert "bind_sockets(options.port, address=options.address)" in src
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tornademos", "debug_app.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )
    assert "--address" in out.stdout + out.stderr
