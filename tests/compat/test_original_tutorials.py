"""The original otrace's tutorials, step by step, against the reworked demos in a real terminal.

The steps are the original GettingStarted (its demo script, hello_test.osh) and
UseWithTornado (holds on 77, then ``/osh/web`` in the chat demo) command lines, typed as the
original's reader typed them; each check is what that step is for (the answer, the context,
the patch taking effect), not our exact layout -- that is test_tutorials.py's job.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.compat.tmux_terminal import TmuxTerminal, demo_env
from tests.compat.tutorial_replay import ROOT, Browser
from tests.tmux import needs_tmux

pytestmark = [
    pytest.mark.terminal,
    needs_tmux,
]


def names(*words: str) -> str:
    """A pattern matching a listing that has all these names, in any layout."""
    return "(?s)" + "".join(rf"(?=.*\b{w}\b)" for w in words)


# (command, pattern its output must contain; "" = must print nothing, None = anything)
GETTING_STARTED = [
    ("help", r"^Commands:"),
    ("help pwd", r"^pwd \[-a\]"),
    ("pwd", r"^/osh/globals$"),
    ("ls ~~", r"^/osh/globals$"),
    ("ls ~~g", r"^/osh/globals$"),
    ("ls ~~w", r"/tornademos$"),
    ("ls", names("GetHandler", "Receive", "Request_stats")),
    ("ls -c", r"^GetHandler Receive$"),
    ("cd GetHandler", ""),
    ("ls -f", r"\bget\b"),
    ("ls -f -..", None),
    ("cd ..", ""),
    ("cd Receive", ""),
    ("ls", r"^respond$"),
    ("view -i respond", r"def respond\(self, request"),
    ("cd ~~g", ""),
    ("pwd", r"^/osh/globals$"),
    ("pr Request_stats", r"^\{'count': 0, 'path': ''\}$"),
    ('Request_stats["count"]', r"^0$"),
    ("set safe_mode False", r"^safe_mode = False$"),
    ('abs(Request_stats["count"] - 1)', r"^1$"),
    ('!Request_stats["count"] = 2', ""),
    ("cd ~~g", ""),
    ("cd Receive", ""),
    ("trace respond", r"^Tracing Receive\.respond$"),
    ("trace", r"Receive\.respond"),
    ("submit(3)", r"^The reciprocal of 3\.0 is 0\.3333333333333333$"),
    ("submit(0)", r"^Receive\.respond:ex-ZeroDivisionError:\d{6}-[\d-]+\n.*division by zero"),
    ("ls ~~", r"^/osh/recent/exceptions/Receive\.respond/ex-ZeroDivisionError/\d{6}-"),
    ("cd ~~", ""),
    ("ls", names("request", "self")),
    ("ls -l", r"(?m)^self +=.*Receive object"),
    ("cd __trc", ""),
    ("ls", names("argvalues", "where")),
    ("ls -l where", r"get-->respond'$"),
    ("cd ~~g", ""),
    ("set safe_mode False", r"^safe_mode = False$"),
    ("set trace_active True", r"^trace_active = True$"),
    ("edit Receive.respond < ~~w/demo/Receive.respond.patch", r"^Patched Receive\.respond"),
    ("submit(2)", r"^The reciprocal of 2\.0 is 0\.5$"),
    (
        "submit(0.0005)",
        r"Client address \('127\.0\.0\.1', \d+\)[\s\S]*Receive\.respond:as-num_check:"
        r"[\s\S]*The reciprocal of 0\.0005 is 2000\.0",
    ),
    ("ls ~~", r"^/osh/recent/asserts/Receive\.respond/as-num_check/"),
    ("cd ~~", ""),
    ("ls", names("request", "self")),
    ("self.value", r"^0\.0005$"),
    ("request.headers", r"(?m)^User-Agent: Python-urllib"),
    ("cd /osh/patches", ""),
    ("ls", r"^Receive\.respond$"),
    ("unpatch Receive.respond", r"^Unpatching Receive\.respond$"),
    ("cd ~~g", ""),
    ("trace", r"Receive\.respond"),
    ("untrace Receive.respond", r"^untraced Receive\.respond$"),
    ("cd ~~g", ""),
    ("trace -a tag -c self.value==1 Receive.__init__", r"^Tracing -a tag -c self\.value==1"),
    ("trace -c taggedself Receive.respond", r"^Tracing -c taggedself Receive\.respond$"),
    ("submit(2)", r"^The reciprocal of 2\.0 is 0\.5$"),
    (
        "submit(1)",
        r"^Receive:tg-self\.value==1;0x[0-9a-f]+:\S+\n"
        r"Receive\.respond:tr-taggedself;tg-self\.value==1;0x[0-9a-f]+:\S+ self=.*request=.*\n"
        r"The reciprocal of 1\.0 is 1\.0$",
    ),
    ("cd ~~", ""),
    ("pwd", r"^/osh/recent/traces/Receive\.respond/tr-taggedself;tg-self\.value==1;0x"),
    ("ls", names("request", "self")),
    ("trace", r"taggedself"),
    ("untrace all", r"untraced all"),
]


def _demo(tmp: Path, *argv: str) -> TmuxTerminal:
    """A tornademos script (``argv``: it and its arguments) in a pane."""
    return TmuxTerminal([sys.executable, *argv], ROOT / "tornademos", demo_env(tmp))


def _port(term: TmuxTerminal) -> int:
    lines = term.wait_lines(r"Listening on")
    return int(re.search(r"Listening on \S+:(\d+)", "\n".join(lines)).group(1))


def _check(term: TmuxTerminal, command: str, pattern: str | None) -> str:
    out = "\n".join(term.run(command))
    if pattern == "":
        assert out.strip() == "", f"{command!r} printed {out!r}"
    elif pattern is not None:
        assert re.search(pattern, out, re.M), f"{command!r} printed:\n{out}"
    return out


def _quit(term: TmuxTerminal) -> None:
    """Stop the demo (``quit`` would only detach the console)."""
    for line in ("set safe_mode False", "shutdown -y"):
        term.type(line)
        term.send("Enter")
    term.wait_lines(r"^Server stopped|chat_websock: stopped|Pane is dead")


@pytest.mark.timeout(180)
def test_getting_started_step_by_step(tmp_path):
    term = _demo(tmp_path, "hello_trace.py", "--port=0")
    try:
        _port(term)
        term.wait_lines(r"^globals> ?$")
        for command, pattern in GETTING_STARTED:
            _check(term, command, pattern)
        _quit(term)
    finally:
        term.close()


@pytest.mark.timeout(120)
def test_getting_started_as_one_script(tmp_path):
    """The original's way to rerun the whole tutorial: source ~~w/demo/hello_test.osh."""
    term = _demo(tmp_path, "hello_trace.py", "--port=0")
    try:
        _port(term)
        term.wait_lines(r"^globals> ?$")
        out = term.run("source ~~w/demo/hello_test.osh", timeout=60)
        text = "\n".join(out)
        for expected in (
            "The reciprocal of 3.0 is 0.3333333333333333",
            "Receive.respond:ex-ZeroDivisionError:",
            "Patched Receive.respond",
            "The reciprocal of 0.0005 is 2000.0",
            "Unpatching Receive.respond",
            "untraced all",
        ):
            assert expected in text, f"{expected!r} missing from:\n{text}"
        assert "Error" not in text.replace("ZeroDivisionError", ""), text
        _quit(term)
    finally:
        term.close()


@pytest.mark.timeout(120)
def test_use_with_tornado_holds_step_by_step(tmp_path):
    term = _demo(tmp_path, "torna_trace.py", "--port=0")
    browser = None
    try:
        browser = Browser(_port(term))
        term.wait_lines(r"^trace_active = True$")  # torna_trace.trc
        term.wait_lines(r"^globals> ?$")
        _check(term, "set trace_active True", r"^trace_active = True$")
        browser.fetch("/?number=1")
        browser.threads[-1].join(30)
        assert "The reciprocal of 1.0 is 1.0" in browser.answers["/?number=1"]
        browser.fetch("/?number=77")
        term.wait_lines(r"^GetHandler\.get:hd-hold_check:\d{6}-")
        browser.fetch("/?number=4")  # the server goes on while 77 is held
        browser.threads[-1].join(30)
        assert "The reciprocal of 4.0 is 0.25" in browser.answers["/?number=4"]
        assert browser.threads[-2].is_alive()
        _check(term, "ls ~~", r"^/osh/recent/holds/GetHandler\.get/hd-hold_check/\d{6}-")
        _check(term, "cd ~~", "")
        _check(term, "ls", names("number", "self"))
        _check(term, "ls -l", r"(?m)^number = '77'$")
        _check(term, "resume", r"Resuming GetHandler\.get:hd-hold_check:")
        browser.threads[-2].join(30)
        assert "The reciprocal of 77.0 is 0.012987012987012988" in browser.answers["/?number=77"]
        _quit(term)
    finally:
        term.close()
        if browser is not None:
            browser.join()


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_use_with_tornado_osh_web_step_by_step(tmp_path, browser):
    term = _demo(tmp_path, "chat_websock.py", "--port", "0")
    context = browser.new_context()
    try:
        port = int(re.search(r":(\d+)$", _listening(term)).group(1))
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/auth/login")
        page.fill("input[name=username]", "user1")
        page.click("input[type=submit]")
        page.wait_for_selector("body[data-connected=yes]")
        term.wait_lines(r"> ?$")
        _check(term, "cd /osh/web", "")
        _check(term, "ls", r"^user1$")
        _check(term, "set safe_mode False", r"^safe_mode = False$")
        _check(term, "cd user1", "")
        _check(term, '$("body")', r"^\[object Object\]$")
        _check(term, '$("body").css("background","red")', r"^\[object Object\]$")
        color = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert color == "rgb(255, 0, 0)"
        _check(term, '$("#message")', r"^\[object Object\]$")
        page.fill("#message", "hello there")
        _check(term, '"User is typing: "+$("#message").val()', r"^User is typing: hello there$")
    finally:
        context.close()
        term.close()


def _listening(term: TmuxTerminal) -> str:
    lines = term.wait_lines(r"chat_websock: Listening on")
    return next(line for line in lines if "chat_websock: Listening on" in line)
