"""Fixtures for /osh/web: the chat demo served in a thread, shells, websocket clients, Chromium."""

from __future__ import annotations

import pytest
from webbridge_helpers import SECRET, Clients, Server, wait_for

from otrace import OShell
from otrace.web.bridge import WebBridge
from tests.rt import PARAMS
from tornademos import chat_websock


@pytest.fixture
def bridge() -> WebBridge:
    return WebBridge()


@pytest.fixture
def chat_server(bridge):
    server = Server(lambda: chat_websock.make_app(bridge, cookie_secret=SECRET))
    server.bridge = bridge
    yield server
    server.stop()


@pytest.fixture
def restore_params():
    saved = {n: PARAMS.get(n) for n in ("safe_mode", "web_timeout", "repeat_interval")}
    yield
    for name, value in saved.items():
        PARAMS.set(name, value)


@pytest.fixture
def shell(chat_server, restore_params):
    """An OShell on the chat's bridge, driven with execute() from the test thread."""
    sh = OShell(web_interface=chat_server.bridge, allow_unsafe=True, no_input=True, banner="")
    out, err = sh.execute("set safe_mode False")
    assert not err
    yield sh
    sh.shutdown()


@pytest.fixture
def clients():
    c = Clients()
    yield c
    c.stop()


@pytest.fixture
def open_page(browser, chat_server):
    """open_page(name) -> a Chromium page signed in to the chat as ``name``."""
    contexts = []

    def open_(name: str):
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        before = set(chat_server.bridge.names())
        page.goto(chat_server.url + "/login")
        page.fill("#name", name)
        page.click("#signin")
        page.wait_for_selector("body[data-connected=yes]")
        wait_for(lambda: set(chat_server.bridge.names()) - before, what=f"{name} to connect")
        return page

    yield open_
    for context in contexts:
        context.close()
