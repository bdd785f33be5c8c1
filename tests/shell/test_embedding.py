"""OShell embedded in a program, set_trace, and the otrace command line (subprocesses)."""

from __future__ import annotations

import io
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import otrace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=ROOT)


def test_oshell_blocking_with_init_file(tmp_path):
    init = tmp_path / "app.trc"
    init.write_text("set max_recent 5\nalias st pr stats\n")
    out, err = io.StringIO(), io.StringIO()
    g = {"__name__": "fakeapp", "stats": {"n": 1}}
    shell = otrace.OShell(
        g,
        g,
        init_file="app.trc",
        work_dir=str(tmp_path),
        allow_unsafe=True,
        _stdin=io.StringIO("st\ncd stats\nls\nquit\n"),
        _stdout=out,
        _stderr=err,
    )
    shell.loop()
    text = out.getvalue()
    assert "otrace object shell" in text
    assert "globals> set max_recent 5" in text
    assert "{'n': 1}" in text
    assert "osh..stats> " in text
    assert "Detaching console" in err.getvalue()
    assert shell.is_shut_down


def test_oshell_new_thread_and_execute():
    g = {"__name__": "fakeapp2", "value": 41}
    r, w = os.pipe()
    stdin = os.fdopen(r)
    shell = otrace.OShell(
        g, new_thread=True, _stdin=stdin, _stdout=io.StringIO(), _stderr=io.StringIO()
    )
    shell.loop()
    assert shell.thread is not None and shell.thread.is_alive()
    assert shell.execute("value + 1") == ("42\n", "")
    shell.shutdown()
    shell.shutdown()  # idempotent
    os.close(w)
    shell.thread.join(5)
    assert not shell.thread.is_alive()
    stdin.close()


def test_wait_to_run_serves_run_on_the_looping_thread():
    """``loop(wait_to_run=True)``: the calling thread runs what ``run`` asks, one at a time,
    each end announced, until shutdown."""
    started, release = threading.Event(), threading.Event()
    seen = []

    def job(words):
        seen.append((threading.current_thread().name, words))
        started.set()
        release.wait(10)

    def plain():
        seen.append((threading.current_thread().name, None))
        raise ValueError("from plain")

    g = {"__name__": "fakeapp4", "job": job, "plain": plain}
    shell = otrace.OShell(
        g, no_input=True, allow_unsafe=True, _stdout=io.StringIO(), _stderr=io.StringIO()
    )
    shell.runtime.params.set("safe_mode", False)
    said: queue.Queue = queue.Queue()
    shell.runtime.add_sink(said.put)
    main = threading.Thread(target=shell.loop, kwargs={"wait_to_run": True}, name="prog-main")
    main.start()
    assert shell.ready.wait(10)
    assert shell.execute("run job a b") == ("", "Running job\n")
    assert started.wait(10)
    out, err = shell.execute("run plain")
    assert "Already running task" in err
    release.set()
    assert said.get(timeout=10) == "Run completed"
    assert shell.execute("run plain") == ("", "Running plain\n")
    text = said.get(timeout=10)
    assert text.startswith("Error in completed run") and "ValueError: from plain" in text
    assert seen == [("prog-main", ["a", "b"]), ("prog-main", None)]
    shell.shutdown()
    main.join(10)
    assert not main.is_alive()


def test_echo_callback_and_no_input():
    seen = []
    g = {"__name__": "fakeapp3"}
    out = io.StringIO()
    shell = otrace.OShell(
        g, no_input=True, echo_callback=seen.append, _stdout=out, _stderr=io.StringIO()
    )
    shell.loop()
    assert any("otrace object shell" in s for s in seen)
    shell.shutdown()


def run_cli(args, script, steps, cwd, timeout=30, extra=()):
    """Run ``otrace`` and feed it lines; each step is (text to wait for first, line)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "otrace", *args, str(script), *extra],
        cwd=cwd,
        env=ENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = {"out": "", "err": ""}

    def pump(name, stream):
        for chunk in iter(lambda: stream.read(1), ""):
            seen[name] += chunk

    readers = [
        threading.Thread(target=pump, args=(n, s), daemon=True)
        for n, s in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for r in readers:
        r.start()
    deadline = time.monotonic() + timeout
    for wait_for, line in steps:
        while wait_for and wait_for not in seen["out"] + seen["err"]:
            assert time.monotonic() < deadline, f"never saw {wait_for!r}: {seen}"
            time.sleep(0.05)
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
    proc.stdin.close()
    proc.wait(timeout=max(1, deadline - time.monotonic()))
    for r in readers:
        r.join(5)
    proc.stdout.close()
    proc.stderr.close()
    return proc.returncode, seen["out"], seen["err"]


@pytest.fixture
def example(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(
        textwrap.dedent("""
        def main():
            print("main ran")

        def test(args):
            print("test got", args)

        def bad():
            local_value = 5
            return 1 / 0

        if __name__ == "__main__":
            print("should not run")
    """)
    )
    (tmp_path / "example.trc").write_text("set max_recent 3\n")
    return script


@pytest.mark.timeout(60)
def test_cli_wait_to_run(example, tmp_path):
    steps = [
        ("globals> ", "run main"),
        ("Run completed", "run test a b"),
        ("test got", "set max_recent"),
        ("max_recent = 3", "quit"),
    ]
    code, out, err = run_cli([], example, steps, tmp_path)
    assert code == 0
    # the program's print and the shell's prompt share stdout: words may interleave
    assert "main ran" in out and "test got" in out and "['a', 'b']" in out
    assert "should not run" not in out
    assert "globals> set max_recent 3" in out  # the init file ran
    assert "max_recent = 3" in out
    assert "Run completed" in err


@pytest.mark.timeout(60)
def test_cli_function_failure_leaves_postmortem_shell(example, tmp_path):
    steps = [("The shell is open", "ls"), ("local_value", "local_value * 2"), ("10", "quit")]
    code, out, err = run_cli(["-f", "bad"], example, steps, tmp_path)
    assert "ZeroDivisionError" in err
    assert "local_value" in out and "10" in out
    assert "bad.." in out  # the prompt names the context


@pytest.mark.timeout(60)
def test_cli_function_success_exits(example, tmp_path):
    code, out, err = run_cli(["-f", "test"], example, [], tmp_path, extra=["x", "y"])
    # the program's print and the shell's first prompt share stdout: words may interleave
    assert code == 0 and "test got" in out and "['x', 'y']" in out


def test_cli_errors(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "otrace", str(tmp_path / "missing.py")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 1 and "Unable to read file" in p.stderr
    script = tmp_path / "s.py"
    script.write_text("x = 1\n")
    p = subprocess.run(
        [sys.executable, "-m", "otrace", "-f", "nope", str(script)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 1 and "does not have function named 'nope'" in p.stderr


def test_set_trace_blocks_until_quit():
    g = {"__name__": "fakeapp4", "answer": 42}
    done = threading.Event()
    out = io.StringIO()

    def target():
        shell = otrace.OShell(
            g,
            g,
            allow_unsafe=True,
            _stdin=io.StringIO("answer\nquit\n"),
            _stdout=out,
            _stderr=io.StringIO(),
        )
        shell.loop()
        done.set()

    threading.Thread(target=target).start()
    assert done.wait(10)
    assert "42" in out.getvalue()


def test_db_interface_tree_is_mounted():
    class Db:
        root_depth = 1

        @classmethod
        def get_root_tree(cls):
            return {"users": {"ann": {"age": 3}}}

    g = {"__name__": "fakeapp5"}
    shell = otrace.OShell(
        g, no_input=True, db_interface=Db, _stdout=io.StringIO(), _stderr=io.StringIO()
    )
    assert shell.execute("ls /osh/db/users/*") == ("/osh/db/users/ann\n", "")
    assert shell.execute("pr /osh/db/users/ann/age") == ("3\n", "")
    shell.shutdown()
