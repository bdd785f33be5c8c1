"""Escape sequences from program data, files and browsers never reach the terminal raw."""

from __future__ import annotations

import io
import threading

import otrace
from otrace import log, tracing

CLEAR = "\x1b[2J"
OSC52 = "\x1b]52;c;aGVsbG8=\x07"
C1_CSI = "\x9b31m"


def nasty(x):
    return x


def run_shell(globals_dict: dict, lines: list[str]) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    shell = otrace.OShell(
        globals_dict,
        allow_unsafe=True,
        new_thread=True,
        _stdin=io.StringIO("".join(line + "\n" for line in lines)),
        _stdout=out,
        _stderr=err,
    )
    shell.loop()
    shell.thread.join(20)
    assert not shell.thread.is_alive()
    return out.getvalue(), err.getvalue()


def assert_clean(text: str) -> None:
    for raw in ("\x1b", "\x07", "\x9b"):
        assert raw not in text, f"raw control character {raw!r} in {text!r}"


def test_trace_announcements_escape_program_data():
    import os

    g = {"__name__": "escapes", "nasty": nasty}
    payload = f"{CLEAR}{OSC52}{C1_CSI}fake-prompt> "
    r, w = os.pipe()
    out, err = io.StringIO(), io.StringIO()
    with os.fdopen(r) as stdin, os.fdopen(w, "w"):
        shell = otrace.OShell(
            g, allow_unsafe=True, new_thread=True, _stdin=stdin, _stdout=out, _stderr=err
        )
        try:
            assert shell.loop().wait(10)
            assert shell.execute("trace -c call nasty")[0].startswith("Tracing")
            nasty(payload)
            for _ in range(100):  # announcements reach the console through its queue
                if "nasty:tr-call:" in out.getvalue() + err.getvalue():
                    break
                threading.Event().wait(0.05)
        finally:
            tracing.unwrap_all()
            shell.shutdown()
    said = out.getvalue() + err.getvalue()
    assert "nasty:tr-call:" in said
    assert "\\x1b[2J" in said
    assert_clean(out.getvalue() + err.getvalue())


def test_values_names_and_prompts_are_escaped():
    g = {"__name__": "escapes2", "s": f"a{CLEAR}b", "d": {f"k{OSC52}": {"x": 1}}}
    out, err = run_shell(g, ["pr s", "ls d/*", "cd d", "ls", "pr nope" + C1_CSI])
    assert "a\\x1b[2Jb" in out
    assert_clean(out + err)


def test_browser_messages_are_escaped():
    seen = io.StringIO()
    console_err = io.StringIO()
    shell = otrace.OShell(
        {"__name__": "escapes3"},
        no_input=True,
        _stdout=seen,
        _stderr=console_err,
    )
    from otrace.console.plain import PlainConsole

    console = PlainConsole(shell, io.StringIO(), seen, console_err)
    log.add_sink(console.announce)
    try:
        log.announce(f"web alice: {CLEAR}{OSC52}")
    finally:
        log.remove_sink(console.announce)
        shell.shutdown()
    assert "web alice: \\x1b[2J" in console_err.getvalue()
    assert_clean(console_err.getvalue())
