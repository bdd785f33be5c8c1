"""Tracing database keys (reference §6.13): trace /osh/db/<path> through the db interface."""

from __future__ import annotations

import threading

import pytest

from otrace.oshell import OShell
from otrace.tracing import dbkeys
from tests.rt import STORE


class Entity:
    def __init__(self, **fields):
        self.__dict__.update(fields)


class Cached:
    def __init__(self, entity):
        self._entity = entity

    def unpack(self):
        return self._entity


class ToyDb:
    """A db interface (reference §10.2): keys like ``carts/ann``, shown as /osh/db/carts/ann."""

    def __init__(self):
        self.data = {"carts/ann": Entity(owner="ann", total=5), "carts/bob": {"total": 50}}
        self.hook = None

    # -- the interface otrace uses
    def get_root_tree(self):
        tree = {}
        for key in self.data:
            kind, name = key.split("/")
            tree.setdefault(kind, {})[name] = self.data[key]
        return tree

    def set_access_hook(self, hook):
        self.hook = hook

    def key_from_path(self, path_list):
        return "/".join(path_list) if len(path_list) == 2 else None

    # -- the application's data layer
    def _report(self, op, key, entity):
        if self.hook is not None:
            self.hook(op, key, Cached(entity))

    def get(self, key):
        entity = self.data[key]
        self._report("get", key, entity)
        return entity

    def put(self, key, entity):
        self.data[key] = entity
        self._report("put", key, entity)

    def delete(self, key):
        entity = self.data.pop(key)
        self._report("delete", key, entity)


@pytest.fixture
def db():
    toy = ToyDb()
    shell = OShell({"db": toy}, allow_unsafe=True, db_interface=toy, no_input=True)
    shell.execute("set safe_mode False")  # trace -a break changes how the program runs
    yield toy, shell
    dbkeys.untrace_all()
    shell.shutdown()


def run(shell, line):
    out, err = shell.execute(line)
    return out.rstrip("\n"), err.rstrip("\n")


def test_access_types_and_the_context(db, shop):
    toy, shell = db
    assert run(shell, "trace -c modify /osh/db/carts/ann") == (
        "Tracing -c modify carts/ann",
        "",
    )
    toy.get("carts/ann")  # a get: not a modification
    assert STORE.newest is None
    toy.put("carts/ann", Entity(owner="ann", total=7))
    ctx = STORE.newest
    assert ctx.id.startswith("carts_ann:db-put:"), ctx.id
    assert ctx[":"].total == 7
    assert "test_access_types_and_the_context" in str(ctx["__trc"]["stack"])
    assert run(shell, "trace") == ("-c modify carts/ann   matches: 1", "")
    toy.put("carts/bob", {"total": 1})  # another key: not traced
    assert STORE.newest is ctx
    assert run(shell, "untrace /osh/db/carts/ann") == ("untraced carts/ann", "")
    toy.delete("carts/ann")
    assert STORE.newest is ctx


def test_field_conditions_and_counts(db):
    toy, shell = db
    run(shell, "trace -c total>10 -n 1 /osh/db/carts/bob")
    toy.get("carts/bob")
    first = STORE.newest
    assert first is not None and first.id.startswith("carts_bob:db-get:")
    toy.get("carts/bob")  # -n 1: only the first
    assert STORE.newest is first
    assert run(shell, "trace") == ("Nothing is traced", "")


def test_bad_keys_and_paths(db):
    toy, shell = db
    assert run(shell, "trace /osh/db/carts")[1] == "Invalid db path for tracing: /osh/db/carts"
    with pytest.raises(Exception, match="may not contain ':'"):
        dbkeys.trace_key("a:b")


def test_break_blocks_the_accessing_thread_until_resume(db):
    toy, shell = db
    run(shell, "trace -a break -c get /osh/db/carts/ann")
    done = threading.Event()
    worker = threading.Thread(target=lambda: (toy.get("carts/ann"), done.set()), daemon=True)
    worker.start()
    for _ in range(200):
        if STORE.newest is not None:
            break
        done.wait(0.05)
    ctx = STORE.newest
    assert ctx.kind == "breaks" and not done.is_set()
    run(shell, f"resume {ctx.id}")
    assert done.wait(10)
