"""Post-mortem pages: contexts from a source other than this process's store."""

from __future__ import annotations

import http.cookiejar
import os
import pickle
import re
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import tornado.testing

from otrace.contexts import TraceContext
from otrace.contexts import capture as cap
from otrace.errors import OTraceError
from otrace.web import traceback as tbweb
from otrace.web.traceback_core import ContextSource

pytestmark = [pytest.mark.timeout(120)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def checkout(cart):
    total = sum(cart.values())
    return total / len([])


def order(items):
    cart = dict(items)
    note = "post-mortem order"  # noqa: F841 -- read from the page
    return checkout(cart)


def plain(node):
    """A context as a store without our classes gives it back (plain dicts, texts)."""
    out = {k: v for k, v in node.items() if k not in ("__up", "__down")}
    out["__trc"] = {
        k: (str(v) if isinstance(v, cap.LazyText) else v) for k, v in node["__trc"].items()
    }
    if "__up" in node:
        out["__up"] = plain(node["__up"])
    return out


def stored_context():
    try:
        order([("apple", 3), ("pear", 4)])
    except ZeroDivisionError as exc:
        values, trc = cap.capture_exception(exc, exc.__traceback__, None, context_lines=9)
    ctx = TraceContext("exceptions", "order", "ZeroDivisionError", values, trc)
    return pickle.loads(pickle.dumps(plain(ctx)))


@pytest.mark.browser
def test_in_memory_source_opens_in_the_page(serve, page):
    ctx = stored_context()
    tid = ctx["__trc"]["id"]
    source = ContextSource.from_mapping({tid: ctx}, label="memory")
    srv = serve(lambda: tbweb.make_app(source, pin=False))

    page.goto(srv.url("/"))  # redirects to the index
    page.click(f"text={tid.split(':')[0]}")
    assert page.locator(".tb-title").inner_text() == "ZeroDivisionError: division by zero"
    assert "post-mortem" in page.locator(".tb-brand").text_content()
    outer = page.locator(".tb-frame", has=page.locator(".tb-func", has_text="order"))
    outer.locator("textarea").fill("note.upper(), sorted(cart)")
    outer.locator("textarea").press("Enter")
    outer.locator(".tb-value", has_text="('POST-MORTEM ORDER', ['apple', 'pear'])").wait_for()
    assert page.goto(srv.url("/__otrace__/tb/ctx/Nope:ex-X:1")).status == 404


def test_missing_sqlite_store_or_file_gives_a_clear_message(tmp_path):
    try:
        import otrace.contexts.sqlite  # noqa: F401
    except ImportError:
        with pytest.raises(OTraceError, match="otrace.contexts.sqlite"):
            tbweb.pickled_source(str(tmp_path / "x.db"))
    else:
        with pytest.raises(OTraceError, match="no such pickle database"):
            tbweb.pickled_source(str(tmp_path / "x.db"))


WRITER = textwrap.dedent("""
    import sys
    from otrace.contexts import TraceContext, capture
    from otrace.contexts import sqlite
    from otrace.runtime import default

    STORE, PARAMS = default().store, default().params

    def checkout(cart):
        total = sum(cart.values())
        return total / len([])

    def order(items):
        cart = dict(items)
        note = "written by a program that has exited"
        return checkout(cart)

    sqlite.install()
    PARAMS.set("pickle_file", sys.argv[1])
    try:
        order([("apple", 3), ("pear", 4)])
    except ZeroDivisionError as exc:
        values, trc = capture.capture_exception(exc, exc.__traceback__, None, context_lines=9)
    ctx = TraceContext("exceptions", "order", "ZeroDivisionError", values, trc)
    STORE.add(ctx)
    assert sqlite.flush(10)
    print(ctx.id)
""")


@pytest.mark.browser
def test_context_stored_by_an_exited_program(serve, page, tmp_path):
    pytest.importorskip("otrace.contexts.sqlite", reason="the SQLite context store is not here yet")
    db, tid = write_db(tmp_path)

    srv = serve(lambda: tbweb.make_app(tbweb.pickled_source(str(db)), pin=False))
    page.goto(srv.url("/__otrace__/tb/"))
    page.click("text=order")
    assert tid in page.locator(".tb-id").inner_text()
    assert page.locator(".tb-title").inner_text() == "ZeroDivisionError: division by zero"
    outer = page.locator(".tb-frame", has=page.locator(".tb-func", has_text="order"))
    outer.locator("textarea").fill("note")
    outer.locator("textarea").press("Enter")
    outer.locator(".tb-value", has_text="'written by a program that has exited'").wait_for()
    # __main__ was the writer's module: a fresh namespace here, not this process's __main__
    outer.locator("textarea").fill("__name__")
    outer.locator("textarea").press("Enter")
    outer.locator(".tb-value", has_text="'__main__'").wait_for()
    outer.locator("textarea").fill("checkout")
    outer.locator("textarea").press("Enter")
    outer.locator(".tb-err", has_text="NameError").wait_for()


def write_db(tmp_path):
    db = tmp_path / "trace.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run(
        [sys.executable, str(script), str(db)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return db, done.stdout.strip().splitlines()[-1]


def test_command_line_entry_point(tmp_path):
    pytest.importorskip("otrace.contexts.sqlite", reason="the SQLite context store is not here yet")
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "otrace.web.traceback", str(tmp_path / "none.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr

    db, tid = write_db(tmp_path)
    sock, port = tornado.testing.bind_unused_port()
    sock.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "otrace.web.traceback", str(db), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = proc.stderr.readline()
        assert "PIN: " in said  # announced before serving
        pin = said.split("PIN: ")[1].strip()
        index = f"http://localhost:{port}/__otrace__/tb/"
        deadline = time.monotonic() + 30
        while True:  # before the PIN a plain GET gets the PIN form and nothing else
            try:
                urllib.request.urlopen(index, timeout=5).close()
                raise AssertionError("the index was served without the PIN")
            except urllib.error.HTTPError as err:
                with err:
                    assert err.code == 403
                    text = err.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert 'name="pin"' in text and urllib.parse.quote(tid, safe="") not in text
        token = re.search(r'name="token" value="([^"]+)"', text).group(1)
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        form = urllib.parse.urlencode({"pin": pin, "token": token, "next": "/__otrace__/tb/"})
        req = urllib.request.Request(
            f"http://localhost:{port}/__otrace__/tb/pin",
            data=form.encode(),
            headers={"Origin": f"http://localhost:{port}"},
        )
        with opener.open(req, timeout=10) as r:  # the redirect leads back to the index
            text = r.read().decode()
        assert urllib.parse.quote(tid, safe="") in text
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
