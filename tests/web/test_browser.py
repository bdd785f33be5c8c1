"""/osh/web with real Chromium pages signed in to the chat demo."""

from __future__ import annotations

import os
import threading

import pytest
from webbridge_helpers import wait_for

from otrace import OShell, log

pytestmark = pytest.mark.browser


def test_evaluate_in_each_page_and_change_it(shell, open_page):
    alice = open_page("alice")
    bob = open_page("bob")
    assert shell.execute("cd /osh/web; ls")[0].split() == ["alice", "bob"]
    shell.execute("cd alice")
    assert shell.session.prompt() == "web..alice> "
    assert shell.execute("[1] * 2") == ("2\n", "")  # JavaScript, not Python
    assert shell.execute("document.body.dataset.user") == ("alice\n", "")
    assert shell.execute('document.body.style.background = "red"') == ("red\n", "")
    assert alice.evaluate("document.body.style.background") == "red"
    assert bob.evaluate("document.body.style.background") == ""
    out, err = shell.execute("nosuchthing.x")
    assert (out, err) == ("", "ReferenceError: nosuchthing is not defined\n")
    assert shell.execute("({a: [1, 2]})") == ('{"a":[1,2]}\n', "")
    assert shell.execute('document.querySelector("#message")') == ('<input id="message">\n', "")
    assert shell.execute("Promise.resolve(6 * 7)") == ("42\n", "")
    shell.execute("cd ../bob")
    assert shell.execute("document.body.dataset.user") == ("bob\n", "")
    shell.execute("cd /osh/globals")
    assert shell.execute("[1] * 2") == ("[1, 1]\n", "")  # Python again


def test_timeout_then_carry_on(shell, open_page):
    open_page("slow")
    shell.execute("set web_timeout 0.5")
    shell.execute("cd /osh/web/slow")
    out, err = shell.execute("new Promise(() => {})")
    assert err == "No answer from browser slow within 0.5s (web_timeout)\n"
    assert shell.execute("1 + 1") == ("2\n", "")


def test_page_closed_while_waiting_and_after(shell, chat_server, open_page):
    page = open_page("gone")
    shell.execute("set web_timeout 30")
    shell.execute("cd /osh/web/gone")
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(r=shell.execute("new Promise(() => {})"))
    )
    worker.start()
    wait_for(lambda: chat_server.bridge.connection("gone").pending, what="the request")
    page.close()
    worker.join(10)
    assert result["r"] == ("", "Browser gone disconnected\n")
    wait_for(lambda: "gone" not in chat_server.bridge.names(), what="gone to leave")
    assert "gone is not connected" in shell.execute("1")[1]


def test_remote_console_log_and_errors(shell, open_page):
    page = open_page("noisy")
    seen: list[str] = []
    log.add_sink(seen.append)
    try:
        shell.execute("cd /osh/web/noisy")
        page.evaluate("console.log('before')")  # forwarding is off by default
        assert shell.execute("otrace.remotelog(true)") == ("true\n", "")
        page.evaluate("console.log('hello', {n: 1})")
        page.evaluate("setTimeout(() => { throw new Error('boom') }, 0)")
        wait_for(lambda: len(seen) >= 2, what="announcements")
    finally:
        log.remove_sink(seen.append)
    assert seen[0] == 'web noisy [log]: hello {"n":1}'
    assert seen[1].startswith("web noisy [uncaught]: Error: boom")


class Capture:
    def __init__(self):
        self.lock = threading.Lock()
        self.text = ""

    def write(self, text):
        with self.lock:
            self.text += text

    def flush(self):
        pass


def test_repeat_monitors_typing(chat_server, open_page, restore_params):
    """The console's repeat, driven through a pipe, re-runs the JavaScript until a key."""
    page = open_page("typist")
    rfd, wfd = os.pipe()
    stdin = os.fdopen(rfd, "r")
    out = Capture()
    sh = OShell(
        web_interface=chat_server.bridge,
        allow_unsafe=True,
        new_thread=True,
        banner="",
        _stdin=stdin,
        _stdout=out,
        _stderr=out,
    )
    sh.loop()
    try:
        os.write(
            wfd,
            b"set safe_mode False\nset repeat_interval 0.05\ncd /osh/web/typist\n"
            b'repeat "User is typing: " + document.querySelector("#message").value\n',
        )
        page.fill("#message", "hel")
        wait_for(lambda: "User is typing: hel\n" in out.text, what="first answer")
        page.fill("#message", "hello world")
        wait_for(lambda: "User is typing: hello world\n" in out.text, what="live update")
        assert out.text.count("User is typing:") >= 2
        os.write(wfd, b"\n")  # a key ends repeat
        os.write(wfd, b"document.title\n")
        wait_for(
            lambda: "Chat\n" in out.text.split("hello world", 1)[-1], what="prompt after repeat"
        )
    finally:
        os.close(wfd)
        sh.thread.join(10)
        stdin.close()
    assert not sh.thread.is_alive()
