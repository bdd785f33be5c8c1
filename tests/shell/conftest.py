from __future__ import annotations

import importlib

import pytest

import otrace.shell.commands  # noqa: F401
from otrace.shell.session import Session


@pytest.fixture
def shop():
    from tests.shell import shop as module

    return importlib.reload(module)


@pytest.fixture
def sh(shop):
    s = Session(vars(shop), allow_unsafe=True)
    yield s
    s.close()


class Transcript:
    """Run lines as an operator would and keep what each printed."""

    def __init__(self, session):
        self.s = session

    def __call__(self, line: str) -> str:
        r = self.s.execute(line)
        return (r.out + r.err).rstrip("\n")

    def out(self, line: str) -> str:
        r = self.s.execute(line)
        assert not r.err, r.err
        return r.out.rstrip("\n")

    def err(self, line: str) -> str:
        r = self.s.execute(line)
        assert r.err, f"expected an error from {line!r}, got {r.out!r}"
        return r.err.rstrip("\n")


@pytest.fixture
def t(sh):
    return Transcript(sh)
