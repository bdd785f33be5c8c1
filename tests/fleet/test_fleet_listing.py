"""The fleet's ``ls /osh/recent`` over the structured ``list`` message, and over the text path
of a worker whose service does not offer it: two real services (in this process, each with a
runtime of its own) behind real sockets."""

from __future__ import annotations

import itertools
import re

import pytest

from otrace.contexts import record
from otrace.contexts.record import TraceContext
from otrace.fleet import contexts as fleet_contexts
from otrace.fleet import members as _members
from otrace.fleet.session import FleetSession
from otrace.runtime import Runtime
from otrace.service import Service, listing
from otrace.service.protocol import MAX_FRAME, encode
from otrace.shell.session import Session

pytestmark = pytest.mark.timeout(60)

_bases = itertools.count(1_800_000_000, 10_000)  # 2027-01-15...: creation times


def base() -> float:
    """A time after those of every context made so far in this process (trace ids are
    unique in a process: one made later sorts later, whatever its creation time)."""
    return float(next(_bases))


class Worker:
    """A service with a runtime of its own, as a worker process would have."""

    def __init__(self, tmp_path, name: str, capable: bool = True) -> None:
        self.rt = Runtime()
        self.rt.params.max_recent = 100_000
        self.service = Service(lambda: Session({}, runtime=self.rt), program=name, runtime=self.rt)
        if not capable:
            self.service.capabilities = ()  # as a service of an older otrace
        self.path = self.service.listen(str(tmp_path / f"{name}.sock"))

    def add(self, kind: str, name: str, label: str, created: float, **trc: str) -> TraceContext:
        ctx = TraceContext(kind, name, label, {}, dict(trc), created=created)
        self.rt.store.add(ctx)
        return ctx


@pytest.fixture(autouse=True)
def _timestamps_restored():
    """Trace ids are unique in a process: making contexts in 2027 would push the ids of
    every later test there.  The ids' clock goes back to where it was afterwards."""
    saved = record.timestamp_state()
    yield
    record.set_timestamp_state(saved)


@pytest.fixture
def two(tmp_path):
    made: list[Worker] = []
    joined: list[_members.Member] = []

    def start(capable_b: bool = True) -> tuple[Worker, Worker, list[_members.Member]]:
        a = Worker(tmp_path, "wa")
        b = Worker(tmp_path, "wb", capable_b)
        made.extend((a, b))
        for pid, w in ((101, a), (202, b)):
            m = _members.attach_member(pid, w.path, lambda p, t: None, lambda: None)
            assert isinstance(m, _members.Member), m
            joined.append(m)
        return a, b, list(joined)

    yield start
    for m in joined:
        m.close()
    for w in made:
        w.service.stop()


def fill(a: Worker, b: Worker) -> None:
    """30 traces in a, 20 traces and 5 exceptions in b, interleaved in time."""
    T0 = base()
    for i in range(30):
        a.add("traces", "Work.step", "call", T0 + 2 * i, argstr=f"i={i}")
        if i < 20:
            b.add("traces", "Work.step", "call", T0 + 2 * i + 1, argstr=f"i={i}")
    for i in range(5):
        b.add("exceptions", "Work.fail", "KeyError", T0 + 100 + i, exception="KeyError: 'x\x1b[2J'")


def ls(members, line: str) -> tuple[list[str], str]:
    result = fleet_contexts.list_contexts(members, line.split())
    return result.out.splitlines(), result.err


def test_the_newest_contexts_of_every_worker_oldest_first(two):
    a, b, members = two()
    fill(a, b)
    lines, err = ls(members, "ls /osh/recent")
    assert err == ""
    assert len(lines) == 55
    assert all(re.fullmatch(r"/osh/recent/(traces|exceptions)/\S+@(101|202)", x) for x in lines)
    pids = [x.rsplit("@", 1)[1] for x in lines[:6]]
    assert pids == ["101", "202"] * 3  # interleaved by time, across workers
    assert lines[-1].startswith("/osh/recent/exceptions/Work.fail/ex-KeyError/")

    # ls_limit applies in each worker, before anything crosses the socket
    a.rt.params.ls_limit = b.rt.params.ls_limit = 10
    sent = members[0].list_contexts("/osh/recent", summaries=True)
    assert (len(sent.entries), sent.total, sent.limit) == (10, 30, 10)
    assert [e.summary for e in sent.entries] == [f"i={i}" for i in range(20, 30)]
    lines, err = ls(members, "ls /osh/recent")
    assert len(lines) == 10 and lines[-5:] == [x for x in lines if "exceptions" in x]
    assert err == "ls: showing the newest 10 of 55 contexts (set ls_limit, or ls a narrower path)\n"

    # a narrower path, a glob, one worker's context by name
    lines, err = ls(members, "ls /osh/recent/exceptions")
    assert len(lines) == 5 and err == ""
    lines, err = ls(members, "ls /osh/recent/*/Work.step")
    assert len(lines) == 10 and all("Work.step" in x for x in lines) and err
    one = lines[0]
    lines, err = ls(members, f"ls {one}")
    assert lines == [one] and err == ""

    # ls -l: time (UTC) and the summary recorded, escaped for the terminal
    lines, _ = ls(members, "ls -l /osh/recent/exceptions")
    assert re.fullmatch(
        r"2027-01-\d\d \d\d:\d\d:\d\d\.000  /osh/recent/exceptions/\S+@202  KeyError: 'x\\x1b\[2J'",
        lines[0],
    ), lines[0]


def test_a_worker_without_the_list_message_is_read_from_its_ls_text(two):
    a, b, members = two(capable_b=False)
    fill(a, b)
    assert members[0].offers("list") and not members[1].offers("list")
    lines, err = ls(members, "ls /osh/recent")
    assert err == "" and len(lines) == 55
    assert [x.rsplit("@", 1)[1] for x in lines[:6]] == ["101", "202"] * 3
    lines, err = ls(members, "ls /osh/recent/exceptions")
    assert len(lines) == 5 and all(x.endswith("@202") for x in lines) and err == ""


def test_bad_paths_dead_workers_and_many_frames(two):
    a, b, members = two()
    T0 = base()
    for i in range(8000):  # long summaries: the answer needs several frames
        a.add("traces", "Work.step", "call", T0 + i, argstr="é" * 400)
    a.rt.params.ls_limit = 9000
    ask = {"path": "/osh/recent", "summaries": True}
    frames = listing.answer(Session({}, runtime=a.rt), 1, ask)
    assert len(frames) > 4 and all(len(encode(f)) < MAX_FRAME for f in frames)
    got = members[0].list_contexts("/osh/recent", summaries=True)
    assert len(got.entries) == 8000 and got.total == 8000 and not got.error
    assert len(got.entries[0].summary) == 160 and got.entries[0].summary.endswith("...")

    lines, err = ls(members, "ls /osh/recent/traces/a/b/c/d")
    assert (
        lines == []
        and err == "ls: '/osh/recent/traces/a/b/c/d' is not below /osh/recent or /osh/saved\n"
    )
    lines, err = ls(members, "ls /osh/saved")
    assert lines == ["(no contexts in 2 workers)"] and err == ""
    lines, err = ls(members, "ls /osh/recent/traces@999")
    assert err == "ls: no worker 999 in this fleet (ls /osh/workers)\n"

    b.service.stop()  # a worker that is gone: its part says so, the others' stand
    members[1].remote.ended.wait(5)
    lines, err = ls(members, "ls /osh/recent")
    assert len(lines) == 8000 and all(x.endswith("@101") for x in lines)
    assert err.startswith("[worker 202] Disconnected")


def test_a_locked_console_lists_nothing_and_a_browsed_worker_shows_its_state(two, tmp_path):
    from otrace.passwords import encrypt_password

    a, b, members = two()
    fill(a, b)
    locked = Worker(tmp_path, "wc")
    try:
        locked.add("traces", "Work.step", "call", base(), argstr="secret=1")
        locked.rt.params.set("password", encrypt_password("pw"))
        m = _members.attach_member(303, locked.path, lambda p, t: None, lambda: None)
        assert isinstance(m, _members.Member), m
        try:
            assert m.remote.locked and m.remote.secret  # attaching consoles start locked
            got = m.list_contexts("/osh/recent", summaries=True)
            assert got.error == "list: the console is locked" and got.entries == []
            lines, err = ls([*members, m], "ls -l /osh/recent")
            assert len(lines) == 55 and "secret=1" not in "\n".join(lines)
            assert err == "[worker 303] list: the console is locked\n"
            # a fleet browsing that worker shows its state: its password prompt, no echo
            fleet = FleetSession("wc")
            fleet.members = {303: m, 101: members[0]}
            assert fleet.prompt() == "fleet[2] (mixed)> " and not fleet.secret
            fleet.focus = 303
            assert fleet.secret == m.remote.secret and fleet.locked
            assert fleet.prompt() == f"[303] {m.remote.prompt()}"
            fleet.focus = 101
            assert fleet.cwd == members[0].remote.cwd and not fleet.locked
        finally:
            m.close()
    finally:
        locked.service.stop()


def test_workers_send_a_share_and_are_asked_again_only_when_it_was_not_enough(two, tmp_path):
    a, b, members = two()
    c = Worker(tmp_path, "wc")
    try:
        m = _members.attach_member(303, c.path, lambda p, t: None, lambda: None)
        assert isinstance(m, _members.Member), m
        members = [*members, m]
        asked: list[tuple[int, int]] = []
        for member in members:
            plain = member.list_contexts

            def recording(path, limit=0, summaries=False, _m=member, _plain=plain):
                asked.append((_m.pid, limit))
                return _plain(path, limit, summaries)

            member.list_contexts = recording  # type: ignore[method-assign]
        for w in (a, b, c):
            w.rt.params.ls_limit = 30
        T0 = base()
        for i in range(60):  # spread evenly, in time order
            (a, b, c)[i % 3].add("traces", "Work.step", "call", T0 + i, argstr=f"i={i}")
        expected = ls(members, "ls /osh/recent")[0]  # the first listing: ls_limit unknown
        assert [limit for _, limit in asked] == [0, 0, 0] and len(expected) == 30
        assert [x.rsplit("@", 1)[1] for x in expected[-3:]] == ["101", "202", "303"]

        asked.clear()
        assert ls(members, "ls /osh/recent")[0] == expected  # a share each was enough
        assert sorted(asked) == [(101, 20), (202, 20), (303, 20)]

        asked.clear()
        T1 = base()
        for i in range(25):  # now only worker a records: its share is not enough
            a.add("traces", "Work.step", "call", T1 + i, argstr=f"late={i}")
        lines, err = ls(members, "ls /osh/recent")
        assert sorted(asked) == [(101, 20), (101, 30), (202, 20), (303, 20)]
        assert all(x.endswith("@101") for x in lines[-25:]) and len(lines) == 30
        assert [x.rsplit("@", 1)[1] for x in lines[:5]] == ["202", "303", "101", "202", "303"]
        assert (
            err
            == "ls: showing the newest 30 of 85 contexts (set ls_limit, or ls a narrower path)\n"
        )
    finally:
        m.close()
        c.service.stop()


def test_waiting_holds_are_listed_with_the_others(two):
    a, b, members = two()
    T0 = base()
    a.add("holds", "Handler.get", "hd", T0, argstr="released")
    waiting = TraceContext("holds", "Handler.get", "hd", {}, {"argstr": "waiting"}, created=T0 + 1)
    waiting.live = object()  # a hold still waiting: the store keeps it apart, never evicted
    a.rt.store.add(waiting)
    lines, err = ls(members, "ls -l /osh/recent/holds")
    assert err == "" and [x.rsplit("  ", 1)[1] for x in lines] == ["released", "waiting"]
    waiting.live = None
