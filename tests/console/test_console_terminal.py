"""The terminal console in a real terminal: tests/console/terminal_app.py inside tmux.

Each test starts its own tmux server (a private socket), types keys with ``send-keys`` and
reads the screen with ``capture-pane``.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import uuid
from pathlib import Path

import pytest

from tests.tmux import TmuxPane, needs_tmux, wait_until

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).with_name("terminal_app.py")

pytestmark = [pytest.mark.terminal, needs_tmux]


class Terminal(TmuxPane):
    """terminal_app.py running in a 120x40 tmux pane (kept after the program exits)."""

    def __init__(self, tmp_path: Path, history: Path):
        self.pidfile = tmp_path / f"pid-{uuid.uuid4().hex[:6]}"
        env = {
            "PYTHONPATH": str(ROOT),
            "OTRACE_HISTORY": str(history),
            "OTRACE_TEST_PIDFILE": str(self.pidfile),
            "TERM": "xterm-256color",
        }
        command = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command += f" {shlex.quote(sys.executable)} {shlex.quote(str(APP))}"
        super().__init__(command, options=(("remain-on-exit", "on"),))
        self.wait_for(r"^globals>", what="the first prompt", timeout=10)

    def signal(self, sig: int) -> None:
        os.kill(int(self.pidfile.read_text()), sig)

    def dead(self) -> tuple[bool, str]:
        """Whether the program ended, and its exit status.

        tmux sometimes marks the pane dead (its pty closed) without reaping the process; then
        the status is read from the zombie's /proc entry.
        """
        out = self.tmux(
            "display", "-p", "-t", "t", "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}"
        )
        dead, status, sig = (out.strip().split(":") + ["", "", ""])[:3]
        if dead != "1":
            return False, ""
        if status or sig:
            return True, status or f"signal {sig}"
        pid = int(self.pidfile.read_text())
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False, ""  # tmux reaped it between the two looks: its status comes next poll
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            return False, ""  # the pty closed, the process is still finishing
        return True, str(int(fields[-1]) >> 8)

    def wait_dead(self, timeout: float = 10) -> str:
        """Wait for the program to end; its exit status."""

        def ended() -> list[str]:
            dead, status = self.dead()
            return [status] if dead else []

        failure = lambda: f"the program did not end; screen:\n{self.screen()}"  # noqa: E731
        return wait_until(ended, timeout, failure)[0]


@pytest.fixture
def history(tmp_path):
    return tmp_path / "history"


@pytest.fixture
def terminal(tmp_path, history):
    term = Terminal(tmp_path, history)
    yield term
    term.close()


def test_banner_ls_and_tab_completion(terminal):
    screen = terminal.screen()
    assert "***otrace object shell" in screen
    terminal.type("ls")
    terminal.send("Enter")
    terminal.wait_for(r"(?s)^Cart .*inventory", what="ls output")
    terminal.wait_last_line("globals>")

    terminal.type("cdl")
    terminal.send("Tab")
    terminal.wait_last_line("globals> cdls")
    assert terminal.cursor_x() == len("globals> cdls ")  # with the blank after the command
    terminal.send("C-u")

    terminal.type("Cart.add")
    terminal.send("Tab")
    terminal.wait_last_line("globals> Cart.add_item")
    terminal.send("C-u")

    terminal.type("resume --ra")  # a long option name, from the declaration
    terminal.send("Tab")
    terminal.wait_last_line("globals> resume --raise")
    terminal.send("C-u")

    terminal.type("set max_r")
    terminal.send("Tab")
    terminal.wait_last_line("globals> set max_recent")
    terminal.send("Enter")
    terminal.wait_for(r"^max_recent = 10", what="set output")


def test_output_from_other_threads_prints_above_the_partial_line(terminal):
    terminal.type("pr 40 +")
    terminal.wait_last_line("globals> pr 40 +")
    terminal.signal(signal.SIGUSR1)  # announce + print + log from the main thread
    # the announcement comes through the service's queue, so it may come after the others
    terminal.wait_for(r"event-from-main-thread", what="the announcement")
    screen = terminal.wait_for(
        r"(?s)^LOG logged-by-program$.*^globals> pr 40 \+$",
        what="the log line, then the prompt redrawn",
    )
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    assert "Cart.add_item:ex-ZeroDivisionError:event-from-main-thread" in lines
    assert "printed-by-program" in lines
    event = lines.index("Cart.add_item:ex-ZeroDivisionError:event-from-main-thread")
    assert "globals> pr 40 +" in lines, screen
    prompt = lines.index("globals> pr 40 +")
    assert event < prompt  # above the prompt, whose partial line survived
    terminal.type(" 2")
    terminal.send("Enter")
    terminal.wait_for(r"^42$", what="the finished line's result")


def test_python_is_highlighted_in_input_and_view_output(terminal):
    terminal.type("view Cart.total")
    terminal.send("Enter")
    terminal.wait_for(r"^def total\(self\):", what="the source")
    coloured = terminal.tmux("capture-pane", "-p", "-e", "-t", "t")
    source_line = next(
        line for line in coloured.splitlines() if "total" in line and "view" not in line
    )
    assert "\x1b[" in source_line
    terminal.type("pr len(cart.items)")
    terminal.wait_last_line("globals> pr len(cart.items)")
    coloured = terminal.tmux("capture-pane", "-p", "-e", "-t", "t")
    typed = next(line for line in coloured.splitlines() if "cart" in line and "pr" in line)
    assert "\x1b[" in typed.split("pr", 1)[1]  # the expression is coloured


def test_refresh_redraws_the_prompt(terminal):
    terminal.type("pr 1")
    terminal.wait_last_line("globals> pr 1")
    terminal.signal(signal.SIGUSR2)  # a break becomes pending; console.refresh()
    terminal.wait_last_line("BRK:globals> pr 1")


def test_ctrl_c_cancels_line_and_multiline_code(terminal):
    terminal.type("pr 12345")
    terminal.send("C-c")
    terminal.wait_last_line("globals>")
    assert "12345\n" not in terminal.screen().replace("pr 12345", "")

    terminal.type("!for i in range(3):")
    terminal.send("Enter")
    terminal.wait_last_line("...")
    terminal.type('    print("loop", i * 10)')
    terminal.send("Enter")
    terminal.wait_for(r'^\.\.\.     print\("loop", i \* 10\)$', what="the continuation line")
    terminal.wait_last_line("...")
    terminal.send("Enter")
    screen = terminal.wait_for(r"^loop 20$", what="the loop's output")
    assert "loop 0" in screen and "loop 10" in screen
    terminal.wait_last_line("globals>")

    terminal.type("!if True:")
    terminal.send("Enter")
    terminal.wait_last_line("...")
    terminal.type("    print('never')")
    terminal.send("C-c")
    terminal.wait_last_line("globals>")  # the pending block is gone
    terminal.type("pr 7 * 6")
    terminal.send("Enter")
    terminal.wait_for(r"^42$")
    assert "never" not in terminal.screen().replace("print('never')", "")


def test_history_across_runs_and_ctrl_d_ends(tmp_path, history):
    first = Terminal(tmp_path, history)
    try:
        first.type("pr 6 * 7")
        first.send("Enter")
        first.wait_for(r"^42$")
        first.wait_last_line("globals>")
        first.send("C-d")
        assert first.wait_dead() == "0"
    finally:
        first.close()
    assert "pr 6 * 7" in history.read_text()

    second = Terminal(tmp_path, history)
    try:
        second.send("Up")
        second.wait_last_line("globals> pr 6 * 7")
        second.send("C-u", "C-d")
        assert second.wait_dead() == "0"
    finally:
        second.close()


def test_quit_ends_the_program(terminal):
    terminal.type("quit")
    terminal.send("Enter")
    assert terminal.wait_dead() == "0"


def test_repeat_redraws_until_a_key_which_only_stops_it(terminal):
    terminal.line("!import itertools; ticks = itertools.count(1)")
    terminal.wait_last_line("globals>")
    terminal.line("repeat pr next(ticks)")
    terminal.wait_for(r"^3$", what="the third repetition")
    terminal.type("x")
    terminal.wait_last_line("globals>")  # back on the normal screen; the key ran nothing
    lines = [line for line in terminal.lines() if line]
    # the last output stays on the normal screen, under the command that made it
    assert lines[-3] == "globals> repeat pr next(ticks)" and lines[-1] == "globals>", lines
    assert int(lines[-2]) >= 3, lines


def test_lock_reads_passwords_without_echo(terminal, history):
    terminal.type("lock")
    terminal.send("Enter")
    terminal.wait_last_line("Set password:")
    terminal.type("hunter2")
    terminal.send("Enter")
    terminal.wait_last_line("Confirm password:")
    terminal.type("hunter2")
    terminal.send("Enter")
    terminal.wait_last_line("Enter password to unlock:")
    terminal.type("hunter2")
    terminal.send("Enter")
    terminal.wait_last_line("globals>")
    assert "hunter2" not in terminal.screen()
    assert "hunter2" not in history.read_text()


def test_auto_lock_after_idle_seconds(terminal):
    from otrace.passwords import encrypt_password

    terminal.type(f"set password {encrypt_password('pw')}")
    terminal.send("Enter")
    terminal.wait_for(r"^password = \(set\)", what="password set")
    terminal.type("set auto_lock 1")
    terminal.send("Enter")
    terminal.wait_last_line("Enter password to unlock:")  # after one idle second
    terminal.type("pw")
    terminal.send("Enter")
    terminal.wait_last_line("globals>")


def test_pdb_action_gets_the_terminal_and_gives_it_back(terminal):
    for line in ("set safe_mode False", "trace -a pdb -c call Cart.total"):
        terminal.type(line)
        terminal.send("Enter")
    terminal.wait_for(r"^Tracing -a pdb", what="trace set")
    terminal.type("!import threading; threading.Thread(target=cart.total).start()")
    terminal.send("Enter")
    terminal.wait_last_line("(Pdb)")
    assert "shell suspended while pdb runs" in terminal.screen()
    terminal.type("p self.items")
    terminal.send("Enter")
    terminal.wait_for(r"^\[\]$", what="pdb's answer")
    terminal.type("c")
    terminal.send("Enter")
    terminal.wait_last_line("globals>")
    terminal.type("pr 40 + 2")
    terminal.send("Enter")
    terminal.wait_for(r"^42$", what="the shell answering again")


def test_ctrl_c_during_a_command_interrupts_it_not_the_program(terminal):
    """The local console is a client too: Ctrl-C reaches the command, never the program."""
    running = terminal.pidfile.with_name("running")
    terminal.line(f"!import pathlib, time; pathlib.Path({str(running)!r}).touch(); time.sleep(30)")
    wait_until(running.exists, 10, lambda: f"the command did not start:\n{terminal.screen()}")
    terminal.send("C-c")
    terminal.wait_for(r"Interrupted", what="the interrupt's message", timeout=5)
    terminal.wait_last_line("globals>", timeout=5)
    assert terminal.dead() == (False, "")
    terminal.type("pr 6 * 7")
    terminal.send("Enter")
    terminal.wait_for(r"^42$", what="the shell answering again")


def test_system_exit_from_a_repr_is_contained(terminal):
    terminal.type("!class Boom:\n    def __repr__(self): raise SystemExit(9)")
    terminal.send("Enter")
    terminal.wait_last_line("...")
    terminal.send("Enter")
    terminal.wait_last_line("globals>")
    terminal.type("pr Boom()")
    terminal.send("Enter")
    terminal.wait_for(r"SystemExit", what="one error line")
    terminal.wait_last_line("globals>")
    assert terminal.dead() == (False, "")
