"""Safe mode is read-only inspection: every escape the issue lists is refused.

Each refusal is checked for its effect too: the spy records no special-method call, the
program's state is unchanged, no file appears.
"""

from __future__ import annotations

import importlib
import os

import pytest

from otrace.shell.session import Session
from tests.rt import PARAMS


@pytest.fixture
def prog():
    from tests.safety import prog as module

    return importlib.reload(module)


@pytest.fixture
def sh(prog, tmp_path):
    s = Session(vars(prog), allow_unsafe=False, work_dir=str(tmp_path))
    assert PARAMS.safe_mode
    yield s
    s.close()


def refused(sh, line: str) -> str:
    r = sh.execute(line)
    assert (
        "not permitted in safe mode" in r.err
        or "not shown in safe mode" in r.err
        or ("not browsed in safe mode" in r.err)
    ), f"{line!r} was not refused: out={r.out!r} err={r.err!r}"
    assert "internal error" not in r.err
    return r.err


def test_unix_commands_outside_osh(sh, tmp_path):
    assert not sh.execute(f"cd {tmp_path}").err  # moving and listing names is inspection
    refused(sh, "touch made_by_bash")
    assert not (tmp_path / "made_by_bash").exists()


def test_file_writes(sh, prog, tmp_path):
    target = tmp_path / "out.py"
    refused(sh, f"view respond > {target}")
    refused(sh, f"unpatch respond > {target}")
    assert not target.exists()


@pytest.mark.parametrize(
    "line",
    ["set pickle_file {tmp}/any.db", "set log_remote 127.0.0.1:9", "set osh_bin /tmp"],
)
def test_parameters_acting_on_the_machine(sh, tmp_path, line):
    refused(sh, line.format(tmp=tmp_path))
    assert not (tmp_path / "any.db").exists()
    assert not PARAMS.pickle_file and not PARAMS.log_remote and not PARAMS.osh_bin


def test_private_names_are_not_revealed(sh):
    refused(sh, "pr /osh/globals/bank/_password")
    refused(sh, "pr _password")
    refused(sh, "pr _secret_token")
    refused(sh, "bank._password")
    refused(sh, "cd bank/_password")
    for line in ("ls -la", "ls -a bank", "ls -l bank/*", "ls -la /osh/globals"):
        out = sh.execute(line).out
        names = (
            [w.split(" = ")[0].strip() for w in out.splitlines()] if "-l" in line else out.split()
        )
        assert not [n for n in names if n.split("/")[-1].startswith("_")], (line, out)
        assert "pw" not in out and "hunter2" not in out
    r = sh.execute("ls -l bank/_*")
    assert "_password" not in r.out + r.err and "pw" not in r.out


def test_files_on_the_machine_are_not_read(sh):
    refused(sh, "view /etc/hostname")
    refused(sh, "source /etc/hostname")
    assert "hostname" in sh.execute("ls /etc/h*").out  # names of files, never their contents


@pytest.mark.parametrize(
    "expr",
    [
        "spy['x']",
        "spy + 1",
        "1 in spy",
        "[*spy]",
        "{**spy}",
        "f'{spy:spec}'",
        "'%(k)s' % spy",
        "spy.missing",
        "spy == 1",
        "not spy",
        "spy and 1",
        "{spy: 1}",
        "(spy,) == (1,)",
    ],
)
def test_expressions_that_would_call_program_code(sh, prog, expr):
    refused(sh, expr)
    assert prog.spy.calls == [], f"{expr} ran {prog.spy.calls}"


def test_defaultdict_lookup_does_not_insert(sh, prog):
    r = sh.execute("store['new']")
    assert "new" not in prog.store, "a defaultdict lookup inserted a key"
    assert r.err  # KeyError or refusal, but no insertion


class _Twin:
    """A key whose hash is the string "x"'s: a lookup of "x" meets it first."""

    calls: list[str] = []
    armed = False  # (making the dict compares the keys too)

    def __hash__(self):
        return hash("x")

    def __eq__(self, other):
        if not _Twin.armed:
            return False
        _Twin.calls.append("eq")
        raise SystemExit("a key's __eq__ ran")


def test_a_lookup_never_compares_with_a_program_key(sh, prog):
    """The fast path (the dict's own lookup) only when every key is a pure scalar: here the
    program's key sits first on "x"'s probe path, so the dict's lookup would call its __eq__."""
    prog.colliding = {_Twin(): 2, "x": 1}
    _Twin.calls.clear()
    _Twin.armed = True
    try:
        r = sh.execute("colliding['x']")
    finally:
        _Twin.armed = False
    assert _Twin.calls == [], "safe mode ran a program key's __eq__"
    assert r.out.strip() == "1", (r.out, r.err)


@pytest.mark.parametrize("expr", ["bank.computed", "bank.cached"])
def test_properties_and_cached_properties_do_not_run(sh, prog, expr):
    refused(sh, expr)
    assert prog.counter["n"] == 0 and "cached" not in vars(prog.bank)


def test_listing_runs_no_property(sh, prog):
    sh.execute("cd bank")
    r = sh.execute("ls -l")
    assert "balance  = 10" in r.out and prog.counter["n"] == 0, r.err
    assert "computed = <not read in safe mode: reading a property (runs its code)>" in r.out


def test_what_safe_mode_still_does(sh, prog):
    assert sh.execute("bank.balance + 1").out.strip() == "11"
    assert sh.execute("counter['n'] == 0").out.strip() == "True"
    assert sh.execute("[1, 2, *[3]][1:]").out.strip() == "[2, 3]"
    assert sh.execute("f'{counter}'").out.strip() == "{'n': 0}"
    assert sh.execute("spy is not None").out.strip() == "True"
    assert sh.execute("pr spy").out.strip().startswith("<tests.safety.prog.Spy object at")
    assert "balance" in sh.execute("ls bank/*").out
    assert prog.spy.calls == []


@pytest.mark.parametrize(
    "line",
    ["exec x = 1", "!x = 1", "run respond", "tag spy", "trace -a break -c call respond"],
)
def test_commands_that_change_the_program(sh, prog, line):
    refused(sh, line)
    assert "x" not in vars(prog)


def test_unsafe_mode_still_evaluates_everything(prog, tmp_path):
    s = Session(vars(prog), allow_unsafe=True, work_dir=str(tmp_path))
    try:
        s.execute("set safe_mode False")
        assert s.execute("spy['x']").out.strip() == "1"
        assert prog.spy.calls == ["getitem"]
        assert "_password" in s.execute("ls -a bank/*").out
    finally:
        s.close()


def test_the_contract_is_documented():
    docs = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "shell.rst")
    with open(docs, encoding="utf-8") as f:
        text = f.read()
    assert "read-only inspection" in text and "private names" in text


class _Wide:
    def __init__(self, n):
        for i in range(n):
            setattr(self, f"a{i}", i)


def test_a_listing_scans_an_instance_dict_once(sh, prog, monkeypatch):
    """Each attribute read of a listing checks the instance dict's keys (a program key could
    answer ``__eq__``); the view checks them once, not once per attribute (a listing of
    5,000 attributes took 280 ms, all of it those scans)."""
    from otrace.vfs import pure

    scans: list[int] = []
    real = pure.all_scalar_keys
    monkeypatch.setattr(pure, "all_scalar_keys", lambda d: scans.append(len(d)) or real(d))
    prog.wide = _Wide(2_000)
    sh.execute("cd wide")
    r = sh.execute("ls -la")
    assert "a999 = 999" in r.out and "a998 = 998" in r.out, r.err
    assert scans.count(2_000) == 1, f"{len(scans)} scans of the instance dict"
