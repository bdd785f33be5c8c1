"""Stored contexts are data, not code: restricted loading, --trust, and what reaches a terminal.

Also the writer's races: counters changed from several threads, and a file another process
holds locked for longer than a second when ``pickle_file`` is set.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import crafted
import pytest
import tornado.testing

import otrace.shell.commands  # noqa: F401
from otrace.contexts import sqlite as store_sqlite
from otrace.contexts.record import TraceContext
from otrace.contexts.safe import escape_controls
from otrace.contexts.sanitize import PlaceholderError, Restricted, Unpicklable, Unresolved
from otrace.contexts.sqlite_format import connect
from otrace.shell.session import Session

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WRITER = HERE / "persist_writer.py"

pytestmark = pytest.mark.timeout(120)


def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}",
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(tmp_path),
        "TMPDIR": str(tmp_path),
    }


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.db"
    crafted.craft(path, marker)
    return path, marker


def no_escape(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text, repr(text)


# -- restricted loading ----------------------------------------------------------------------


def test_restricted_load_keeps_type_name_repr_and_attributes(tmp_path):
    path = tmp_path / "ctx.db"
    subprocess.run(
        [sys.executable, str(WRITER), str(path), "rich"],
        env=env(tmp_path),
        capture_output=True,
        timeout=90,
        check=True,
    )
    tree = store_sqlite.open_pickled(path)  # the default: data only
    stamps = tree["exceptions"]["Cart.boom"]["ex-ZeroDivisionError"]
    ctx = stamps[next(iter(stamps))][":"]
    point = ctx["point"]
    assert isinstance(point, Restricted) and not type(point).__module__.startswith("persist")
    assert (point.x, point.y, point.tags) == (3, 6, ["a", "b"])  # state as plain attributes
    assert repr(point) == "<restricted persist_shapes.Point: Point(x=3, y=6, tags=['a', 'b'])>"
    assert ctx["nested"]["point"] is point  # shared references stay shared
    # value types of the standard library load for real
    assert str(ctx["when"]) == "2024-05-06 07:08:09" and str(ctx["money"]) == "1.25"
    with pytest.raises(PlaceholderError, match="not loaded: the file is not trusted"):
        point.norm()
    with pytest.raises(PlaceholderError, match="cannot call a stand-in for persist_shapes.Point"):
        point()
    assert not hasattr(point, "missing")  # still an AttributeError for hasattr/getattr
    lock = ctx["lock"]
    assert isinstance(lock, Unpicklable)
    with pytest.raises(PlaceholderError, match=r"acquire: the stored value is a placeholder"):
        lock.acquire()
    assert isinstance(ctx["extra"], Unresolved) and ctx["extra"].colour == "red"
    tree.close()


def test_value_types_load_for_real_when_restricted():
    import collections
    import datetime
    import decimal
    import fractions
    import pathlib
    import pickle
    import uuid

    from otrace.contexts.unpickle import loads

    values = [
        1, 2.5, 1j, True, None, "s", b"b", bytearray(b"x"), [1], (1,), {"a": 1}, {1},
        frozenset({2}), range(3), slice(1, 2), ..., collections.OrderedDict(a=1),
        collections.defaultdict(list, a=[1]), collections.deque([1]), collections.Counter("aab"),
        datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC),
        datetime.date(2024, 1, 2), datetime.timedelta(3), decimal.Decimal("1.25"),
        fractions.Fraction(1, 3), uuid.UUID(int=5), pathlib.PurePosixPath("/a"),
        pathlib.Path("/b"),
    ]  # fmt: skip
    for value in values:
        loaded = loads(pickle.dumps(value, 5))
        assert type(loaded) is type(value) and loaded == value, value
    error = loads(pickle.dumps(ValueError("bad", 2), 5))
    assert type(error) is ValueError and error.args == ("bad", 2)
    # a path as Python 3.13 pickles it (pathlib._local) loads in every supported version
    data = pickle.dumps(pathlib.PosixPath("/c"), 2)
    data = data.replace(b"cpathlib\nPosixPath", b"cpathlib._local\nPosixPath")
    assert b"pathlib._local" in data and loads(data) == pathlib.PosixPath("/c")


def test_crafted_file_runs_no_code_unless_trusted(evil):
    path, marker = evil
    tree = store_sqlite.open_pickled(path)
    ctx = tree.find(crafted.TRACE_ID.replace("\x1b", "\\x1b"))
    assert ctx is None  # the id column holds the raw name; listing shows it escaped
    (name,) = list(tree["exceptions"])
    assert name == "Evil\\x1b[2J.run"
    entry = tree["exceptions"][name]["ex-Boom"]["261202-04-00-00"]
    ctx = entry[":"]
    assert not marker.exists()
    evil_value, direct = ctx["evil"], ctx["direct"]
    assert isinstance(evil_value, Restricted) and isinstance(direct, Restricted)
    assert evil_value._args == (f"touch {marker}",)  # the call's arguments, kept as data
    assert "posix.system" in repr(evil_value) or "os.system" in repr(evil_value)
    assert "builtins.exec" in repr(direct)
    for key in ctx:  # frame-level names a terminal would act on are escaped
        assert isinstance(key, str) and key.isprintable(), repr(key)
    no_escape(ctx.id)
    assert not marker.exists()
    tree.close()

    trusted = store_sqlite.open_pickled(path, trust=True)
    (name,) = list(trusted["exceptions"])
    trusted["exceptions"][name]["ex-Boom"]["261202-04-00-00"][":"]
    assert marker.read_text().count("exec ran") == 1  # the file really is malicious
    trusted.close()


def test_shell_unpickle_and_cd_run_no_code_and_print_no_escapes(evil, tmp_path):
    path, marker = evil
    s = Session({"__name__": "x"}, work_dir=str(tmp_path))
    try:
        r = s.execute(f"unpickle {path}")
        assert "1 context in " in r.out and "loaded as data" in r.out, r.err
        lines = [s.execute("ls -R /osh/pickled").out]
        r = s.execute("cd /osh/pickled/exceptions/*/ex-Boom/*/:")
        assert not r.err, r.err
        for line in (
            "ls",
            "ls -l",
            "ls -la",
            "ls -l __trc",
            "pwd",
            "evil",
            "direct._args",
            "text",  # a stored str, printed as text: escaped all the same
            "pr text, count",
            f"pr /osh/pickled/exceptions/{escape_controls(crafted.NAME)}/ex-Boom",
        ):
            r = s.execute(line)
            lines += [r.out, r.err]
        lines.append(s.prompt())
        assert not marker.exists()
        for text in lines:
            no_escape(text)
        assert s.execute("text").out == "plain \\x1b]52;c;b3duZWQ=\\x07\n"
        r = s.execute("evil.returncode")
        assert "not stored in this stand-in" in r.err and "--trust" in r.err, r.err
        assert "Traceback" not in r.err
        # trusting runs code: refused in safe mode
        r = s.execute(f"unpickle --trust {path}")
        assert "safe mode" in r.err and not marker.exists()
    finally:
        s.close()


def test_cli_browse_is_restricted_and_trust_is_explicit(evil, tmp_path):
    path, marker = evil
    commands = "cd exceptions/*/ex-Boom/*/:\nls -l\nevil\nquit\n"
    p = subprocess.run(
        [sys.executable, "-m", "otrace", "-p", str(path)],
        input=commands,
        capture_output=True,
        text=True,
        timeout=60,
        env=env(tmp_path),
        cwd=tmp_path,
    )
    assert p.stdout.count("1 context in ") == 1 and "<restricted" in p.stdout, p.stdout + p.stderr
    no_escape(p.stdout + p.stderr)
    assert not marker.exists()
    p = subprocess.run(
        [sys.executable, "-m", "otrace", "-p", str(path), "--trust"],
        input=commands,
        capture_output=True,
        text=True,
        timeout=60,
        env=env(tmp_path),
        cwd=tmp_path,
    )
    assert "trusted" in p.stdout, p.stdout + p.stderr
    assert marker.exists()


def test_postmortem_page_is_restricted(evil, tmp_path):
    path, marker = evil
    sock, port = tornado.testing.bind_unused_port()
    sock.close()
    proc = subprocess.Popen(
        # --no-pin: this test reads the page itself (before the PIN only the form is served)
        [sys.executable, "-m", "otrace.web.traceback", str(path), "--port", str(port), "--no-pin"],
        env=env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "traceback page" in proc.stderr.readline()  # announced before serving
        # the index lists the trace id with its control characters escaped
        shown_id = escape_controls(crafted.TRACE_ID)
        url = f"http://localhost:{port}/__otrace__/tb/ctx/" + urllib.parse.quote(shown_id, safe="")
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    page = r.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert "&lt;restricted" in page and "count" in page
        assert not marker.exists()
        with urllib.request.urlopen(url.split("/ctx/")[0] + "/", timeout=5) as r:
            index = r.read().decode()
        assert urllib.parse.quote(shown_id, safe="") in index
        no_escape(page + index)
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


# -- the writer's races ----------------------------------------------------------------------


def test_writer_counts_are_exact_when_threads_interleave(tmp_path):
    """Force a thread switch between every bytecode of submit: no count may be lost."""
    writer = store_sqlite.PickleWriter(tmp_path / "count.db", queue_size=100_000)
    ctx = TraceContext("traces", "A.b", "call", {"i": 1})
    submit_code = store_sqlite.PickleWriter.submit.__code__
    counting = {store_sqlite.PickleWriter._count.__code__, submit_code}

    def yield_often(frame, event, arg):
        if frame.f_code in counting:
            frame.f_trace_opcodes = True
            if event == "opcode":
                time.sleep(0)  # let the other thread run right here
            return yield_often
        return None

    per_thread, threads = 300, 4
    start = threading.Barrier(threads)

    def run() -> None:
        sys.settrace(yield_often)
        start.wait()
        for _ in range(per_thread):
            writer.submit(ctx)
        sys.settrace(None)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    assert writer.flush(30)
    stats = writer.stats()
    writer.close()
    assert stats["submitted"] == per_thread * threads, stats
    assert stats["written"] == per_thread * threads, stats


@pytest.mark.parametrize("hold", ["write", "read"])
def test_set_pickle_file_waits_for_a_file_held_longer_than_a_second(tmp_path, hold):
    """Another process holds the file for 1.5 s: setting pickle_file waits for it.

    ``write``: a fresh file held as a first writer holds it.  ``read``: an otrace file not yet
    in WAL mode, read by another process -- switching it to WAL needs the file to itself.
    """
    path = tmp_path / "held.db"
    if hold == "read":
        connect(path, create=True).close()
    holder = sqlite3.connect(path, isolation_level=None, timeout=0)
    if hold == "write":
        holder.execute("BEGIN EXCLUSIVE")
    else:
        holder.execute("PRAGMA journal_mode = DELETE")
        holder.execute("BEGIN")
        holder.execute("SELECT count(*) FROM otrace_meta").fetchone()
    code = (
        "import json, sys, time\n"
        "from otrace.contexts import sqlite\n"
        "from otrace.runtime import default\n"
        "PARAMS = default().params\n"
        "sqlite.install()\n"
        "print('setting', flush=True)\n"
        "t = time.monotonic()\n"
        "try:\n"
        f"    PARAMS.set_text('pickle_file', {str(path)!r})\n"
        "    print(json.dumps({'ok': True, 'waited': time.monotonic() - t}))\n"
        "except Exception as exc:\n"
        "    print(json.dumps({'ok': False, 'error': str(exc)}))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "setting"
        time.sleep(1.5)  # the lock is held this long on purpose: it is the condition tested
        holder.execute("COMMIT")
        out, err = proc.communicate(timeout=60)
    finally:
        holder.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ok"], result.get("error", err)
