"""otrace attach in a real terminal (tmux, private server sockets) against a served program
started with stdin from /dev/null."""

from __future__ import annotations

import re
import threading
import time
import urllib.request

import pytest
from service_helpers import Attached, needs_tmux

from tests.tmux import wait_until

pytestmark = [pytest.mark.terminal, needs_tmux, pytest.mark.timeout(120)]


@pytest.fixture
def console(server):
    c = Attached(server)
    yield c
    c.close()


def test_hold_cd_resume_tutorial_through_an_attached_console(server, console):
    answer: dict = {}

    def held() -> None:
        url = f"http://127.0.0.1:{server.port}/?number=77"
        with urllib.request.urlopen(url, timeout=30) as resp:
            answer["text"] = resp.read().decode()

    t = threading.Thread(target=held)
    t.start()
    console.wait_for(r"hd-hold_check", what="the hold announced above the prompt")
    assert server.get("number=4") == "ok number=4 n=0\n"  # everything else is served
    assert t.is_alive()
    console.line("cd ~~")
    console.wait_for(
        r"^get\.\.[\d-]+> *$|^Handler\.get\.\.|\.\.[\d-]+> *$", what="the context prompt"
    )
    console.line("pr number")
    console.wait_for(r"^77$", what="the held frame's local")
    console.line("resume")
    t.join(15)
    assert answer.get("text") == "ok number=77 n=0\n"


def test_tab_completion_is_answered_by_the_session(console):
    console.type("pr Wo")
    console.send("Tab")
    console.wait_for(r"globals> pr Work", what="the completed name")
    console.send("Enter")
    console.wait_for(r"<class '__main__\.Work'>|served_app\.Work|Work'>", what="the class")


def test_two_consoles_own_cwd_shared_traces_announced_to_both(server, console):
    other = Attached(server)
    try:
        console.line("trace -c call Work.step")
        console.wait_for(r"Tracing -c call Work\.step")
        console.line("cd Work")
        console.wait_prompt("osh..Work>")
        other.line("pwd")
        other.wait_for(r"^/osh/globals$", what="the second console's own cwd")
        other.wait_for(r"\*\*\* console \d+ \(.*\): trace -c call Work\.step", what="who traced")
        assert server.get("n=1").startswith("ok")
        for c in (console, other):
            c.wait_for(r"Work\.step:tr-call", what="the announcement on both consoles")
        other.line("trace")
        other.wait_for(r"Work\.step", what="the shared trace listed")
    finally:
        other.close()


def test_quit_detaches_and_the_server_answers(server, console):
    console.line("quit")
    console.wait_for(r"^EXIT-STATUS-0$", what="the attach client exiting")
    assert server.get("n=1") == "ok number= n=1\n"
    assert server.proc.poll() is None


def test_ctrl_d_detaches(server, console):
    console.send("C-d")
    console.wait_for(r"^EXIT-STATUS-0$", what="the attach client exiting")
    assert server.get().startswith("ok")


def test_ctrl_c_interrupts_a_stuck_command_within_a_second(server, console):
    console.line("set safe_mode False")
    console.wait_for(r"safe_mode = False")
    running = server.tmp_path / "running"
    console.line(f"!import pathlib, time; pathlib.Path({str(running)!r}).touch(); time.sleep(30)")
    wait_until(running.exists, 15, lambda: f"the command did not start:\n{console.screen()}")
    started = time.monotonic()
    console.send("C-c")
    console.wait_for(r"Interrupted", what="the interrupt's message", timeout=5)
    console.wait_prompt("globals>", timeout=5)
    assert time.monotonic() - started < 2.5  # within a second, plus tmux polling
    assert server.get().startswith("ok")  # the program never saw a SIGINT
    console.line("pr 40 + 2")
    console.wait_for(r"^42$", what="the session still usable")


def test_ctrl_c_interrupts_python_code_at_once(server, console):
    console.line("set safe_mode False")
    console.wait_for(r"safe_mode = False")
    running = server.tmp_path / "running"
    console.line(
        f"!import pathlib; pathlib.Path({str(running)!r}).touch(); exec('while True: pass')"
    )
    wait_until(running.exists, 15, lambda: f"the loop did not start:\n{console.screen()}")
    console.send("C-c")
    console.wait_for(r"KeyboardInterrupt|Interrupted", what="the loop interrupted", timeout=5)
    console.wait_prompt("globals>", timeout=5)
    console.line("pr 'still here'")
    console.wait_for(r"^still here$")


def test_lock_holds_against_keys(server, console):
    console.line("lock")
    console.wait_for(r"Set password: *$", what="the password prompt")
    console.send("C-c")  # cancels setting one
    console.wait_for(r"Lock cancelled")
    console.wait_prompt("globals>")
    console.line("lock")
    console.wait_for(r"Set password: *$")
    console.line("sesame")
    console.wait_for(r"Confirm password: *$")
    console.line("sesame")
    console.wait_for(r"Enter password to unlock: *$")
    console.send("C-d")
    console.wait_for(r"Locked: only the password unlocks", what="Ctrl-D refused")
    console.send("C-c")
    console.line("wrong")
    console.wait_for(r"Wrong password")
    console.line("sesame")
    console.wait_prompt("globals>")


def test_repeat_through_an_attached_console(server, console):
    console.line("repeat pr counts")
    screen = console.wait_for(r"^\{'requests': \d+\}$", what="the repeated output")
    first = int(re.findall(r"^\{'requests': (\d+)\}$", screen, re.M)[-1])
    server.get()
    console.wait_for(rf"^\{{'requests': {first + 1}\}}$", what="a repetition showing the request")
    console.type("x")
    console.wait_prompt("globals>")  # the key only stops it
    assert "repeat pr counts" in console.screen()


def test_a_stopped_program_does_not_hold_the_console_hostage(server, console):
    import os
    import signal

    console.line("pr 1 + 1")
    console.wait_for(r"^2$")
    os.kill(server.pid, signal.SIGSTOP)
    try:
        console.line("pr 2 + 2")
        # the line is accepted (the cursor left it) and sent to the stopped program
        wait_until(lambda: console.cursor_x() == 0, 15, lambda: console.screen())
        console.send("C-c")
        console.wait_for(r"does not answer", what="the console giving up", timeout=15)
        console.wait_for(r"^EXIT-STATUS-2$", what="the attach client exiting")
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert server.get().startswith("ok")
