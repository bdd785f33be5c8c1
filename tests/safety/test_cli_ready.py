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
            from otrace.runtime import default

            # one string each: print(a, b) writes a, " " and b apart when Python runs
            # unbuffered (PYTHONUNBUFFERED, as on CI), and the shell's prompt thread wrote
            # between them ("globals> contexts", a newline, " 1")
            print(f"result {work(41)}")
            print(f"contexts {len(default().store.find(['work:*']))}")
        """)
    )
    # the init file takes longer than the second the old cli slept
    (tmp_path / "slowinit.trc").write_text(
        "set safe_mode False\n!import time; time.sleep(1.5)\ntrace -c call work\n"
    )
    code, out, err = run_cli(["-f", "main"], script, [], tmp_path)
    # the program's lines may come after a prompt
    assert code == 0 and "result 42" in out, err
    assert "contexts 1" in out, "the call ran before the init file set its trace"


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
