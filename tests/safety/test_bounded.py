"""Bounded work: every input gives a bounded result or a clear one-line error."""

from __future__ import annotations

import importlib
import os

import pytest

from otrace.shell.session import Session


@pytest.fixture
def prog():
    from tests.safety import prog as module

    return importlib.reload(module)


@pytest.fixture
def sh(prog, tmp_path):
    s = Session(vars(prog), allow_unsafe=True, work_dir=str(tmp_path))
    s.execute("set safe_mode False")
    yield s
    s.close()


def one_line_error(r) -> str:
    assert r.err and "internal error" not in r.err and "Traceback" not in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1, r.err
    return r.err


class ManyAttributes:
    def __init__(self, n):
        for i in range(n):
            setattr(self, f"a{i}", i)


@pytest.mark.parametrize("safe", [False, True])
def test_ls_honours_ls_limit_in_attribute_directories(sh, prog, safe):
    prog.many = ManyAttributes(50_000)
    sh.execute("set ls_limit 100")
    sh.execute("cd many")
    if safe:
        sh.execute("set safe_mode True")
    r = sh.execute("ls")
    assert len(r.out.split()) <= 100
    assert "showing 100 of" in r.err
    r = sh.execute("ls -l")
    assert len(r.out.splitlines()) <= 130  # 100 lines and the blank after every fifth


def test_trace_condition_with_many_items_leaves_nothing_registered(sh, prog):
    from otrace import tracing

    for n in (99, 5_000):  # 5,000 items: a line under the 100,000-character limit
        cond = ",".join(f"x=={i}" for i in range(n))
        err = one_line_error(sh.execute(f"trace -c {cond} respond"))
        assert "items" in err
        assert tracing.traces() == []
    assert sh.execute("trace -c call respond").out.startswith("Tracing")
    assert [s.key for s in tracing.traces()] == ["respond"]


@pytest.mark.parametrize("cmd", ["source", "view", "edit respond <"])
@pytest.mark.timeout(30)
def test_devices_and_huge_files_are_not_read(sh, tmp_path, cmd):
    one_line_error(sh.execute(f"{cmd} /dev/zero"))
    big = tmp_path / "big.trc"
    with open(big, "wb") as f:
        f.truncate(20_000_000)  # sparse: 20 MB of NULs
    err = one_line_error(sh.execute(f"{cmd} {big}"))
    assert "larger than" in err


@pytest.mark.timeout(30)
def test_fifo_is_refused_without_blocking(sh, tmp_path):
    fifo = tmp_path / "pipe.trc"
    os.mkfifo(fifo)
    assert "not a regular file" in one_line_error(sh.execute(f"source {fifo}"))


@pytest.mark.parametrize("safe", [False, True])
@pytest.mark.parametrize(
    "expr",
    ["(" * 5000 + "1" + ")" * 5000, "-" * 50_000 + "1", "[" * 300 + "]" * 300],
    ids=["parens", "minus", "brackets"],
)
def test_deeply_nested_expressions(sh, safe, expr):
    if safe:
        sh.execute("set safe_mode True")
    err = one_line_error(sh.execute(f"pr {expr}"))
    assert "nested too deeply" in err or "too many nested" in err


def test_an_object_whose_class_raises_does_not_break_listing(sh, prog):
    class Liar:
        @property
        def __class__(self):
            raise RuntimeError("no class for you")

        def __repr__(self):
            return "<liar>"

    prog.liar = Liar()
    for safe in (False, True):
        sh.execute(f"set safe_mode {safe}")
        r = sh.execute("ls -l")
        assert "internal error" not in r.err and "Traceback" not in r.err, r.err
        assert "liar" in r.out and "respond" in r.out
        for line in ("ls -c", "ls -v", "ls -t", "cd liar", "ls", "cd ~~g"):
            r = sh.execute(line)
            assert "internal error" not in r.err and "Traceback" not in r.err, (line, r.err)


@pytest.mark.parametrize(
    "line, message",
    [
        ("set ls_limit 99999999999999999999999", "ls_limit: must be at most"),
        ("set ls_limit -99999999999999999999999", "ls_limit: must be at"),
    ],
)
def test_numbers_beyond_what_commands_can_use_are_refused(sh, line, message):
    # found by the fuzz test: a huge ls_limit was accepted, then every glob ls raised
    assert message in one_line_error(sh.execute(line))
    r = sh.execute("ls *")
    assert "Traceback" not in r.err and "internal error" not in r.err, r.err


def test_a_float_parameter_must_be_finite(sh):
    from otrace.params import TABLE

    name = next(p.name for p in TABLE if p.type is float)
    for text in ("nan", "inf", "-inf"):
        assert f"{name}: must be a finite number" in one_line_error(
            sh.execute(f"set {name} {text}")
        )
