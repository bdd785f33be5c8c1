"""``otrace -f`` waits for the init file (OShell.loop() says when it is ready)."""

from __future__ import annotations

import textwrap
import threading

import pytest

import otrace
from tests.shell.test_embedding import run_cli


@pytest.mark.timeout(60)
def test_function_runs_after_a_slow_init_file(tmp_path):
    script = tmp_path / "slowinit.py"
    script.write_text(
        textwrap.dedent("""
        def work(n):
            return n + 1

        def main():
            print("result", work(41))
        """)
    )
    # the init file takes longer than the second the old cli slept
    (tmp_path / "slowinit.trc").write_text(
        "set safe_mode False\n!import time; time.sleep(1.5)\ntrace -c call work\n"
    )
    code, out, err = run_cli(["-f", "main"], script, [], tmp_path)
    assert code == 0 and "result 42" in out
    assert "work:tr-call:" in out + err, "the call ran before the init file set its trace"


def test_loop_returns_an_event_set_when_ready(tmp_path):
    import io

    (tmp_path / "app.trc").write_text("set max_recent 7\n")
    out = io.StringIO()
    shell = otrace.OShell(
        {"__name__": "readyapp"},
        init_file=str(tmp_path / "app.trc"),
        new_thread=True,
        _stdin=io.StringIO(""),
        _stdout=out,
        _stderr=io.StringIO(),
    )
    try:
        ready = shell.loop()
        assert isinstance(ready, threading.Event) and ready.wait(10)
        assert "max_recent = 7" in out.getvalue()
    finally:
        shell.shutdown()


def test_session_lines_from_two_threads_do_not_interleave():
    from otrace.shell.session import Session

    entered, release = threading.Event(), threading.Event()

    def slow():
        entered.set()
        release.wait(5)
        return "slow done"

    sh = Session({"__name__": "twothreads", "slow": slow}, allow_unsafe=True)
    sh.execute("set safe_mode False")
    try:
        box: dict = {}
        t = threading.Thread(target=lambda: box.setdefault("r", sh.execute("slow()")))
        t.start()
        assert entered.wait(5)
        other: dict = {}
        t2 = threading.Thread(target=lambda: other.setdefault("r", sh.execute("cd /osh/recent")))
        t2.start()
        t2.join(0.3)
        assert t2.is_alive(), "a second thread ran a line inside the first one's"
        release.set()
        t.join(5)
        t2.join(5)
        assert "slow done" in box["r"].out and sh.cwd == ("osh", "recent")
    finally:
        release.set()
        sh.close()
