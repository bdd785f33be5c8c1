"""What a newcomer ran into, walking through otrace for the first time: each a message that
says what happened, or a behaviour that does what the command's name promises."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

import otrace.shell.commands  # noqa: F401 - declares the commands
from otrace.shell.session import Session
from otrace.tracing import unwrap_all

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def sh(shop):
    session = Session(vars(shop), allow_unsafe=True)
    yield session
    session.close()
    unwrap_all()


def run(sh, line: str) -> tuple[str, str]:
    r = sh.execute(line)
    return r.out.rstrip("\n"), r.err.rstrip("\n")


def test_an_unbalanced_quote_after_a_command_is_one_line(sh):
    assert run(sh, 'cd "abc') == ("", 'cd: No closing quotation (" at column 4)')
    assert run(sh, "pwd") == ("/osh/globals", "")


def test_cd_newest_context_when_there_is_none_says_so(sh):
    assert run(sh, "cd ~~") == (
        "No trace context yet: ~~ is /osh/globals until one is recorded",
        "",
    )


def test_pushd_without_a_path(sh):
    assert run(sh, "pushd") == (
        "",
        "pushd: no other directory; pushd PATH remembers this one, goes to PATH",
    )
    run(sh, "pushd Cart")
    assert run(sh, "pwd") == ("/osh/globals/Cart", "")
    assert run(sh, "pushd") == ("", "")  # exchanges, like swapd
    assert run(sh, "pwd -a") == ("/osh/globals\n/osh/globals/Cart", "")


def test_save_outside_a_context_suggests_save(sh):
    out, err = run(sh, "save")
    assert err == "save: not in a trace context; cd into one (cd ~~) or give ids: save ID..."
    assert "resume" in run(sh, "resume")[1]


def test_tag_in_a_dict_directory(sh):
    run(sh, "set safe_mode False")  # tag adds an attribute: refused in safe mode
    run(sh, "cd stats")
    assert run(sh, "tag") == (
        "",
        "Cannot tag a dict: it takes no attributes (tags go on objects of your own classes)",
    )


def test_ls_long_keeps_the_quotes_of_strings_in_containers(sh):
    run(sh, "set safe_mode False")
    run(sh, "!pair = ['0', 0]")
    run(sh, "!one = ('x',)")
    assert run(sh, "ls -l pair one") == ("pair = ['0', 0]\none  = ('x',)", "")


def test_an_option_given_twice_is_refused(sh):
    out, err = run(sh, "trace -c d==1 -c d==2 helper")
    assert err.startswith("trace: option -c given twice; usage: trace ")
    assert run(sh, "trace") == ("Nothing is traced", "")


def test_trace_count_zero_is_refused(sh):
    out, err = run(sh, "trace -n 0 helper")
    assert err == (
        "trace: bad value for -n: 0 traces nothing; N: trace N matches, -N: skip N first; "
        "no -n: all"
    )
    assert run(sh, "trace") == ("Nothing is traced", "")


def test_user_tracebacks_leave_out_otraces_frames(sh, shop):
    run(sh, "trace Cart.boom")
    run(sh, "set safe_mode False")
    out, err = run(sh, "c.boom(0)")
    assert "wrappers.py" not in err and "/otrace/" not in err, err
    files = [line.split('"')[1] for line in err.splitlines() if line.startswith("  File ")]
    assert files == ["<otrace>", shop.__file__, shop.__file__], err
    assert err.endswith("ZeroDivisionError: float division by zero")


def _program(tmp_path: Path) -> Path:
    prog = tmp_path / "prog.py"
    prog.write_text(
        textwrap.dedent(
            """
            def show(*values):
                print("show got", values, flush=True)

            def main(args):
                print("main got", args, flush=True)
            """
        )
    )
    return prog


@pytest.mark.parametrize(
    ("function", "expected"),
    [("show", "show got ('0', 'x')"), ("main", "main got ['0', 'x']")],
)
def test_otrace_f_passes_the_arguments(tmp_path, function, expected):
    prog = _program(tmp_path)
    p = subprocess.run(
        [sys.executable, "-m", "otrace", "-f", function, str(prog), "0", "x"],
        cwd=tmp_path,
        env={**ENV, "HOME": str(tmp_path), "OTRACE_HISTORY": ""},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert expected in p.stdout, p.stdout + p.stderr
    assert p.returncode == 0


def test_set_trace_in_a_function_reaches_its_locals(tmp_path):
    prog = tmp_path / "pdbstyle.py"
    prog.write_text(
        textwrap.dedent(
            """
            import otrace

            def work(n):
                total = n * 2
                otrace.set_trace(globals())
                print("after", total, flush=True)

            work(21)
            """
        )
    )
    p = subprocess.run(
        [sys.executable, str(prog)],
        input="total + n\npwd\nquit\n",
        env={**ENV, "HOME": str(tmp_path), "OTRACE_HISTORY": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "locals> 63\n" in p.stdout and "/osh/locals" in p.stdout, p.stdout + p.stderr
    assert "after 42" in p.stdout


def test_debug_app_shutdown_stops_the_server_and_requests_are_not_logged(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tornademos" / "debug_app.py"), "--debug", "--port=0"],
        env={**ENV, "HOME": str(tmp_path), "OTRACE_HISTORY": "", "XDG_RUNTIME_DIR": str(tmp_path)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = ""
        while not line.startswith("Serving on"):  # after the traceback page's PIN line
            line = proc.stdout.readline()
            assert line, "the demo ended before serving"
        url = line.split()[2]
        with urllib.request.urlopen(url.replace("localhost", "127.0.0.1"), timeout=30) as resp:
            assert resp.read() == b"Hello, world!"
        proc.stdin.write("set safe_mode False\nshutdown -y\n")  # quit would only detach
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "Server stopped" in out
    assert "200 GET" not in out, out  # no access log over the console
