"""The SQLite pickle store: write in one process, read in another, and every failure mode."""

from __future__ import annotations

import datetime
import decimal
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import persist_shapes
import pytest

from otrace.contexts import sqlite as store_sqlite
from otrace.contexts import writer_thread
from otrace.contexts.record import FrameContext, TraceContext
from otrace.contexts.sanitize import Limits, Unpicklable, Unresolved
from otrace.contexts.store import ContextStore
from otrace.errors import StoreError
from otrace.params import Params
from tests.tmux import wait_until

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WRITER = HERE / "persist_writer.py"

pytestmark = pytest.mark.timeout(120)


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}"}


def run_writer(path: Path, *args: str) -> list[dict]:
    out = subprocess.run(
        [sys.executable, str(WRITER), str(path), *args],
        env=env(),
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def entry(tree, leaf):
    kind, name, ctxid, label = leaf
    return tree[kind][name][ctxid][label]


def leaves(tree) -> list:
    """(kind, name, ctxid, label) of every record shown."""
    return [(k, n, c, t) for k in tree for n in tree[k] for c in tree[k][n] for t in tree[k][n][c]]


@pytest.fixture
def hooked(tmp_path):
    """A private Params/ContextStore pair with the pickle hook installed (workdir tmp_path)."""
    params, store = Params(), ContextStore()
    store_sqlite.install(params, store, workdir=tmp_path)
    yield params, store
    store_sqlite.uninstall()


# -- round trip --------------------------------------------------------------------------------


def test_contexts_written_in_another_process_read_back(tmp_path):
    path = tmp_path / "ctx.db"
    (stats,) = run_writer(path, "rich")
    assert stats["written"] == 2 and stats["failed"] == 0 and stats["dropped"] == 0

    tree = store_sqlite.open_pickled(path, trust=True)
    assert sorted(tree) == ["exceptions", "traces"]
    stamps = tree["exceptions"]["Cart.boom"]["ex-ZeroDivisionError"]
    (label,) = list(stamps)
    assert list(stamps[label]) == [":"]
    ctx = stamps[label][":"]
    assert isinstance(ctx, TraceContext)
    assert ctx.id == f"Cart.boom:ex-ZeroDivisionError:{label}" and ctx.kind == "exceptions"
    assert ctx.pid == stats["pid"]
    # real types round-trip
    assert ctx["point"] == persist_shapes.Point(3, 6, ["a", "b"])
    assert type(ctx["point"]) is persist_shapes.Point
    assert ctx["when"] == datetime.datetime(2024, 5, 6, 7, 8, 9)
    assert ctx["money"] == decimal.Decimal("1.25")
    assert ctx["nested"]["a"] == [1, 2, {"b": (3, 4)}] and ctx["nested"]["s"] == {1, 2}
    assert ctx["nested"]["point"] is ctx["point"]  # shared references stay shared
    assert ctx["cyclic"][1] is ctx["cyclic"]
    # what does not pickle keeps its type name and a repr
    for name, type_name in [
        ("lock", "lock"),
        ("gen", "generator"),
        ("bad", "BadReduce"),
        ("sock_in_root", "socket"),
        ("file_in_root", "BufferedRandom"),
        ("huge", "bytes"),
    ]:
        value = ctx[name]
        assert isinstance(value, Unpicklable), name
        assert value.type_name == type_name
        assert value.repr_text and len(value.repr_text) < 400
    assert "no pickling me" in ctx["bad"].reason
    assert "too large" in ctx["huge"].reason
    assert "<unpicklable persist_shapes.BadReduce" in repr(ctx["bad"])
    deep = ctx["deep"]
    while isinstance(deep, list):
        deep = deep[0]
    assert isinstance(deep, Unpicklable) and "Recursion" in deep.reason
    # a class only the writer's __main__ had: a stand-in with its attributes
    main_only = ctx["extra"]
    assert isinstance(main_only, Unresolved)
    assert (main_only.colour, main_only.size) == ("red", 3)
    assert "__main__.MainOnly" in repr(main_only)
    # the frame chain and __trc
    trc = ctx["__trc"]
    assert trc["id"] == ctx.id and trc["context"] == "exceptions"
    assert trc["where"].endswith("make_context-->outer-->inner")
    assert "ZeroDivisionError" in trc["exc_stack"] and isinstance(trc["exc_stack"], str)
    assert "inner()" in trc["exc_context"]
    assert trc["frame"][2] == "inner" and trc["argvalues"] == (["n", "extra"], None, None)
    up = ctx["__up"]
    assert isinstance(up, FrameContext) and up["__down"] is ctx and "__down" not in ctx
    assert up["label"] == "outer-frame" and up["__trc"]["funcname"] == "outer"
    assert up["__up"]["__trc"]["funcname"] == "make_context"
    # loading again gives the same object (browsing keeps identity)
    assert stamps[label][":"] is ctx

    call = tree["traces"]["Worker.step"]["tr-call"]
    (only,) = list(call)
    assert call[only][":"]["payload"] == {"items": [0, 1, 2, 3, 4], "s": "x" * 20}
    tree.close()


def test_read_in_another_process(tmp_path, hooked):
    params, store = hooked
    params.set_text("pickle_file", "other.db")
    store.add(persist_shapes.make_simple(7, name="Shop.sell"))
    assert store_sqlite.flush(10)
    code = (
        "from otrace.contexts.sqlite import open_pickled\n"
        f"t = open_pickled({str(tmp_path / 'other.db')!r}, {{'methodname': 'Shop.sell'}})\n"
        "d = t['traces']['Shop.sell']['tr-call']\n"
        "print(d[next(iter(d))][':']['i'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "7"


def test_snapshot_is_taken_when_the_context_is_added(hooked, tmp_path):
    params, store = hooked
    params.set_text("pickle_file", str(tmp_path / "snap.db"))
    items = [1, 2]
    ctx = TraceContext("traces", "A.b", "call", {"items": items, "d": {"k": items}})
    store.add(ctx)
    items.append(3)  # changed after the context was created
    ctx["later"] = 1
    ctx["__trc"]["return_value"] = 5
    assert store_sqlite.flush(10)
    loaded = store_sqlite.open_pickled(tmp_path / "snap.db").find(ctx.id)
    assert loaded is not None and loaded is not ctx
    assert loaded["items"] == [1, 2] and loaded["d"]["k"] is loaded["items"]
    assert "later" not in loaded and "return_value" not in loaded["__trc"]


def test_relative_path_switch_and_close(hooked, tmp_path):
    params, store = hooked
    params.set_text("pickle_file", "one.db")
    first = store_sqlite.writer()
    assert first is not None and first.path == tmp_path / "one.db"
    store.add(persist_shapes.make_simple(1))
    params.set_text("pickle_file", "two.db")  # switching writes what was queued, then closes
    store.add(persist_shapes.make_simple(2))
    params.set_text("pickle_file", "")
    assert store_sqlite.writer() is None
    store.add(persist_shapes.make_simple(3))  # not written anywhere
    for name, expected in [("one.db", [1]), ("two.db", [2])]:
        tree = store_sqlite.open_pickled(name, workdir=tmp_path)
        assert [tree.load(r)["i"] for r in range(1, tree.count() + 1)] == expected


def test_submit_never_raises(tmp_path, announced):
    w = store_sqlite.PickleWriter(tmp_path / "x.db")
    w.submit(None)  # type: ignore[arg-type]  # not a context at all
    w.submit(persist_shapes.make_simple(1))
    assert w.flush(10)
    assert w.stats()["failed"] == 1 and w.stats()["written"] == 1
    assert sum("cannot snapshot" in a for a in announced) == 1
    w.close()


# -- lazy listing, filters, rm -----------------------------------------------------------------


def fill(path: Path, count: int, **kw) -> None:
    w = store_sqlite.PickleWriter(path, queue_size=count + 10, **kw)
    for i in range(count):
        name = f"Worker{i % 3}.step"
        w.submit(persist_shapes.make_simple(i, name=name, kind="traces" if i % 2 else "exceptions"))
    assert w.flush(30)
    w.close()


def test_listing_loads_no_record(tmp_path):
    path = tmp_path / "big.db"
    fill(path, 3000)
    tree = store_sqlite.open_pickled(path)
    statements: list[str] = []
    tree._conn.set_trace_callback(statements.append)
    shown = leaves(tree)
    assert len(shown) == 3000 == tree.count()
    assert not any("pickled_object" in s for s in statements)
    assert not tree._loaded
    kind, name, ctxid, label = shown[0]
    entry = tree[kind][name][ctxid][label]
    assert entry[":"].name == name
    assert any("pickled_object" in s for s in statements) and len(tree._loaded) == 1


def test_filters_combine(tmp_path):
    path = tmp_path / "f.db"
    fill(path, 30)
    tree = store_sqlite.open_pickled(path, {"methodname": "Worker1.step"})
    assert sorted(tree) == ["exceptions", "traces"]
    assert {n for _, n, _, _ in leaves(tree)} == {"Worker1.step"}
    assert len(leaves(tree)) == 10
    both = store_sqlite.open_pickled(path, {"methodname": "Worker1.*", "kind": "traces"})
    assert list(both) == ["traces"] and len(leaves(both)) == 5
    one = leaves(both)[0]
    exact = store_sqlite.open_pickled(
        path, {"timestamp": one[3], "context_id": "tr-call", "key": f"{one[1]}:tr-call:{one[3]}"}
    )
    assert leaves(exact) == [one]
    assert leaves(store_sqlite.open_pickled(path, {"methodname": "Nobody"})) == []
    assert len(leaves(store_sqlite.open_pickled(path, {"pid": str(os.getpid())}))) == 30
    assert store_sqlite.parse_filters(["methodname=A.b", "kind=traces"]) == {
        "methodname": "A.b",
        "kind": "traces",
    }
    with pytest.raises(StoreError, match="unknown filter field 'colour'"):
        store_sqlite.open_pickled(path, {"colour": "red"})
    with pytest.raises(StoreError, match="field=value"):
        store_sqlite.parse_filters(["methodname"])
    with pytest.raises(StoreError, match="pid"):
        store_sqlite.open_pickled(path, {"pid": "abc"})


def test_remove_prunes_the_displayed_tree_only(tmp_path):
    path = tmp_path / "rm.db"
    fill(path, 12)
    tree = store_sqlite.open_pickled(path)
    first = leaves(tree)[0]
    assert tree.remove(first) == 1
    assert first not in leaves(tree) and len(leaves(tree)) == 11
    assert tree.remove(["traces", "Worker0.step"]) == 2
    assert not any(leaf[:2] == ("traces", "Worker0.step") for leaf in leaves(tree))
    # removing the last leaves of a branch prunes the branch
    for leaf in [x for x in leaves(tree) if x[:2] == ("traces", "Worker1.step")]:
        tree.remove(leaf)
    assert "Worker1.step" not in tree["traces"]
    assert tree.remove(["exceptions"]) == 5  # the first leaf was one of the 6 already
    assert list(tree) == ["traces"]
    with pytest.raises(StoreError, match="no such pickled entry"):
        tree.remove(["exceptions"])
    with pytest.raises(StoreError):
        tree.remove([])
    assert tree.count() == 12  # the file is untouched
    assert len(leaves(store_sqlite.open_pickled(path))) == 12


def test_same_timestamp_from_two_processes_stays_two_records(tmp_path):
    path = tmp_path / "dup.db"
    w = store_sqlite.PickleWriter(path)
    ctx = persist_shapes.make_simple(1)
    w.submit(ctx)
    w.submit(ctx)  # as if a second process issued the same trace id
    assert w.flush(10)
    w.close()
    tree = store_sqlite.open_pickled(path)
    labels = list(tree["traces"]["Worker.step"]["tr-call"])
    assert labels == [ctx.timestamp, f"{ctx.timestamp}#2"]
    stamps = tree["traces"]["Worker.step"]["tr-call"]
    assert stamps[labels[1]][":"].id == ctx.id
    assert stamps[labels[0]][":"] is not stamps[labels[1]][":"]


# -- several writers, crashes --------------------------------------------------------------------


def test_concurrent_writer_processes(tmp_path):
    path = tmp_path / "shared.db"
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), str(path), "many", "250"],
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
        results.append(json.loads(out.splitlines()[-1]))
    assert all(r["written"] == 250 and r["failed"] == 0 for r in results)
    tree = store_sqlite.open_pickled(path)
    assert tree.count() == 1000 and len(leaves(tree)) == 1000
    conn = sqlite3.connect(path)
    per_pid = dict(conn.execute("SELECT pid, count(*) FROM otrace_context GROUP BY pid"))
    conn.close()
    assert per_pid == {r["pid"]: 250 for r in results}
    for r in results:
        sub = store_sqlite.open_pickled(path, {"pid": str(r["pid"])})
        got = sorted(entry(sub, leaf)[":"]["i"] for leaf in leaves(sub))
        assert got == list(range(250))


def test_forked_workers_write_to_the_same_file(tmp_path):
    path = tmp_path / "fork.db"
    stats, children = run_writer(path, "fork", "40")
    assert children["codes"] == [0, 0] and stats["written"] == 2
    conn = sqlite3.connect(path)
    per_pid = dict(conn.execute("SELECT pid, count(*) FROM otrace_context GROUP BY pid"))
    conn.close()
    assert per_pid == {stats["pid"]: 2, children["children"][0]: 40, children["children"][1]: 40}


def test_killed_writer_leaves_a_readable_file(tmp_path):
    path = tmp_path / "killed.db"
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), "forever"],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    committed = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            committed = int(line.split()[1])
            if committed >= 400:
                break
        time.sleep(0.05)  # let it get into the middle of further writes
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
    assert committed >= 400
    tree = store_sqlite.open_pickled(path)
    shown = leaves(tree)
    assert len(shown) == tree.count() >= committed
    values = {tree[k][n][c][t][":"]["i"] for k, n, c, t in shown}
    assert set(range(committed)) <= values


# -- errors ------------------------------------------------------------------------------------


def test_open_errors_are_one_line_store_errors(tmp_path):
    def fails(path, pattern):
        with pytest.raises(StoreError, match=pattern) as info:
            store_sqlite.open_pickled(path)
        assert "\n" not in str(info.value)
        return info.value

    fails(tmp_path / "missing.db", "no such file")
    fails(tmp_path, "is a directory")
    text = tmp_path / "notes.txt"
    text.write_text("this is not a database at all\n" * 200)
    fails(text, "cannot open pickle file: file is not a database")
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    fails(empty, "not an otrace pickle file")
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE customers (name TEXT)")
    conn.commit()
    conn.close()
    fails(other, "not an otrace pickle file")

    newer = tmp_path / "newer.db"
    fill(newer, 3)
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE otrace_meta SET value = '99' WHERE name = 'version'")
    conn.commit()
    conn.close()
    fails(newer, "newer otrace .format version 99")
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE otrace_meta SET value = 'soon' WHERE name = 'version'")
    conn.commit()
    conn.close()
    fails(newer, "unknown pickle file version 'soon'")


def test_corrupt_files(tmp_path):
    path = tmp_path / "corrupt.db"
    fill(path, 400)
    data = bytearray(path.read_bytes())
    assert len(data) > 40_000
    broken = tmp_path / "pages.db"
    data[4096 : len(data)] = os.urandom(len(data) - 4096)  # everything but the first page
    broken.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="malformed|not a database|cannot"):
        tree = store_sqlite.open_pickled(broken)
        leaves(tree)
    header = tmp_path / "header.db"
    header.write_bytes(b"\0" * 100 + path.read_bytes()[100:])
    with pytest.raises(StoreError, match="not a database"):
        store_sqlite.open_pickled(header)
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(path.read_bytes()[: 3 * 4096 + 17])
    with pytest.raises(StoreError):
        tree = store_sqlite.open_pickled(truncated)
        for leaf in leaves(tree):
            entry(tree, leaf)[":"]
    # one damaged record: the rest still load
    conn = sqlite3.connect(path)
    conn.execute("UPDATE otrace_context SET pickled_object = x'80059500' WHERE recnum = 2")
    conn.commit()
    conn.close()
    tree = store_sqlite.open_pickled(path)
    assert tree.load(1)["__trc"]
    with pytest.raises(StoreError, match="cannot unpickle"):
        tree.load(2)
    assert tree.load(3)


def test_set_pickle_file_refuses_unusable_files(hooked, tmp_path):
    params, store = hooked
    bad = tmp_path / "notes.txt"
    bad.write_text("not sqlite\n" * 100)
    with pytest.raises(StoreError, match="file is not a database"):
        params.set_text("pickle_file", str(bad))
    assert params.pickle_file == "" and store_sqlite.writer() is None
    with pytest.raises(StoreError, match="no such directory"):
        params.set_text("pickle_file", str(tmp_path / "nowhere" / "x.db"))
    newer = tmp_path / "newer.db"
    fill(newer, 1)
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE otrace_meta SET value = '2' WHERE name = 'version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer otrace"):
        params.set_text("pickle_file", str(newer))
    store.add(persist_shapes.make_simple(1))  # nothing open: nothing happens


def test_locked_file_is_reported_once_and_writing_resumes(tmp_path, announced):
    path = tmp_path / "locked.db"
    w = store_sqlite.PickleWriter(path, busy_timeout=0.05, retries=1)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    for i in range(3):
        w.submit(persist_shapes.make_simple(i))
        assert w.flush(10)
    assert w.stats()["failed"] == 3
    assert sum("locked" in a for a in announced) == 1
    blocker.execute("COMMIT")
    blocker.close()
    w.submit(persist_shapes.make_simple(9))
    assert w.flush(10) and w.stats()["written"] == 1
    w.close()
    tree = store_sqlite.open_pickled(path)
    assert tree.count() == 1


def test_full_file_is_reported_once(tmp_path, announced):
    path = tmp_path / "full.db"
    w = store_sqlite.PickleWriter(path, max_file_bytes=96 * 1024, batch_size=1)
    big = {"blob": os.urandom(20_000)}
    for i in range(20):
        w.submit(TraceContext("traces", "Big.write", "call", {"i": i, **big}))
    assert w.flush(10)
    stats = w.stats()
    assert stats["written"] >= 1 and stats["failed"] >= 1
    assert stats["written"] + stats["failed"] == 20
    assert sum("full" in a for a in announced) == 1
    w.close()
    assert store_sqlite.open_pickled(path).count() == stats["written"]


def test_full_queue_drops_and_reports_once(tmp_path, announced):
    path = tmp_path / "slow.db"
    w = store_sqlite.PickleWriter(path, queue_size=2, batch_size=1, busy_timeout=5.0, retries=0)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    for i in range(50):  # the writer is stuck on the lock; submit must not wait for it
        w.submit(persist_shapes.make_simple(i))
    assert w.stats()["dropped"] >= 40
    assert sum("cannot keep up" in a for a in announced) == 1
    blocker.execute("COMMIT")
    blocker.close()
    assert w.flush(20)
    w.close()


def test_default_queue_bound_drops_beyond_it_and_says_so(tmp_path, announced):
    """The default bound (writer_thread.QUEUE_SIZE) holds while the writer is stuck: contexts
    beyond it are dropped at once, counted, announced once with the bound, and those that
    waited are all written when the writer can go on."""
    bound = writer_thread.QUEUE_SIZE
    path = tmp_path / "bound.db"
    w = store_sqlite.PickleWriter(path, batch_size=1, busy_timeout=30.0, retries=0)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    extra = 50
    for i in range(bound + extra):
        w.submit(persist_shapes.make_simple(i))
    stats = w.stats()
    # the writer thread may have taken one context off the queue before it met the lock
    assert stats["queued"] in (bound, bound - 1), stats
    assert stats["submitted"] == bound + extra
    assert extra - 1 <= stats["dropped"] <= extra
    notes = [a for a in announced if "cannot keep up" in a]
    assert len(notes) == 1 and f"more than {bound} waiting" in notes[0], notes
    blocker.execute("COMMIT")
    blocker.close()
    assert w.flush(60)
    w.close()
    written = store_sqlite.open_pickled(path).count()
    assert written == bound + extra - stats["dropped"]


def test_writer_writes_queued_contexts_by_itself(tmp_path):
    """Queueing does not wake the writer (it looks at its queue every 50 ms to 1 s): what
    was submitted reaches the file without a flush or a close."""
    path = tmp_path / "own.db"
    w = store_sqlite.PickleWriter(path)
    try:
        for i in range(3):
            w.submit(persist_shapes.make_simple(i))
        wait_until(lambda: w.stats()["written"] == 3, 20, lambda: f"{w.stats()}")
        assert store_sqlite.open_pickled(path).count() == 3
    finally:
        w.close()


def test_writer_is_usable_from_many_threads(tmp_path):
    path = tmp_path / "threads.db"
    w = store_sqlite.PickleWriter(path)
    threads = [
        threading.Thread(
            target=lambda k=k: [
                w.submit(persist_shapes.make_simple(k * 100 + i)) for i in range(100)
            ]
        )
        for k in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert w.flush(20)
    w.close()
    assert store_sqlite.open_pickled(path).count() == 800


def test_limits_are_configurable(tmp_path):
    path = tmp_path / "limits.db"
    w = store_sqlite.PickleWriter(path, limits=Limits(max_value_bytes=100, max_depth=2))
    w.submit(TraceContext("traces", "L.m", "call", {"s": "y" * 500, "deep": [[[[1]]]]}))
    assert w.flush(10)
    w.close()
    ctx = store_sqlite.open_pickled(path).load(1)
    assert isinstance(ctx["s"], Unpicklable) and ctx["s"].type_name == "str"
    assert ctx["deep"] == [[[[1]]]]  # below max_depth pickled whole, still the real value
