"""The shell side of persistence: set pickle_file, unpickle, /osh/pickled, rm, otrace -p."""

from __future__ import annotations

import os
import subprocess
import sys

import otrace.shell.commands  # noqa: F401
from otrace.contexts import TraceContext, sqlite
from otrace.shell.session import Session
from tests.rt import STORE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_context(value):
    ctx = TraceContext("exceptions", "Cart.boom", "ZeroDivisionError", {"d": value, "z": 42})
    STORE.add(ctx)
    return ctx


def test_write_unpickle_browse_rm(tmp_path):
    sqlite.install(workdir=str(tmp_path))
    s = Session({"__name__": "x"}, allow_unsafe=True, work_dir=str(tmp_path))
    try:
        s.execute("set safe_mode False")  # safe mode writes no database file
        r = s.execute("set pickle_file trace.db")
        assert r.out.strip() == "pickle_file = trace.db" and not r.err
        ctx = make_context(0)
        assert sqlite.flush(10)
        r = s.execute("unpickle trace.db")
        assert "1 context in " in r.out, r.err
        assert s.execute("ls /osh/pickled").out.split() == ["/osh/pickled"]
        s.execute("cd /osh/pickled/exceptions/Cart.boom/ex-ZeroDivisionError")
        assert s.execute("ls").out.split() == [ctx.timestamp]
        r = s.execute(f"cd {ctx.timestamp}/:")
        assert not r.err, r.err
        assert s.prompt() == "osh..:> "
        assert s.execute("ls").out.split() == ["__trc", "d", "z"]
        assert s.execute("z + 1").out.strip() == "43"
        s.execute("cd __trc")
        s.execute("cde")
        assert s.cwd[-1] == ":"
        s.execute("cd /osh/pickled")
        s.execute("set safe_mode True")
        assert (
            "safe mode"
            in s.execute(f"rm exceptions/Cart.boom/ex-ZeroDivisionError/{ctx.timestamp}").err
        )
        s.execute("set safe_mode False")
        r = s.execute(f"rm exceptions/Cart.boom/ex-ZeroDivisionError/{ctx.timestamp}")
        assert r.out.strip() == "Deleted 1 keys", r.err
        assert s.execute("ls").out.strip() == ""
    finally:
        s.execute("set pickle_file ''")
        sqlite.uninstall()
        s.close()


def test_unpickle_errors(tmp_path):
    s = Session({"__name__": "x"}, work_dir=str(tmp_path))
    bad = tmp_path / "notsqlite.db"
    bad.write_text("hello, I am not a database\n" * 100)
    for line in [
        f"unpickle {tmp_path}/missing.db",
        f"unpickle {bad}",
        "unpickle",
        f"unpickle {bad} nofield",
    ]:
        r = s.execute(line)
        assert r.err and "Traceback" not in r.err, (line, r.err)
    s.close()


def test_cli_pickled(tmp_path):
    db = tmp_path / "t.db"
    script = (
        f"import sys; sys.path.insert(0, {ROOT!r})\n"
        "from otrace.contexts import TraceContext, sqlite\n"
        "from otrace.runtime import default\n"
        "STORE, PARAMS = default().store, default().params\n"
        f"sqlite.install(); PARAMS.set('pickle_file', {str(db)!r})\n"
        "STORE.add(TraceContext('exceptions', 'f', 'KeyError', {'k': 'gone'}))\n"
        "sqlite.flush(10)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    p = subprocess.run(
        [sys.executable, "-m", "otrace", "-p", str(db)],
        input="cd exceptions/f/ex-KeyError/*/:\nk\nquit\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )
    assert p.stdout.count("1 context in ") == 1, p.stdout + p.stderr  # said once
    assert "gone" in p.stdout, p.stdout + p.stderr
