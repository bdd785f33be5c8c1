from __future__ import annotations

import importlib

import pytest

import otrace.shell.commands  # noqa: F401
from otrace.shell.session import Session
from otrace.tracing import patching as engine
from tests.shell.conftest import Transcript


@pytest.fixture
def prog():
    from tests.patching import prog as module

    yield importlib.reload(module)
    engine.unpatch_all()


@pytest.fixture
def sh(prog):
    s = Session(vars(prog), allow_unsafe=True)
    s.execute("set safe_mode False")
    yield s
    s.close()


@pytest.fixture
def t(sh):
    return Transcript(sh)


@pytest.fixture
def patchfile(tmp_path):
    """Write source text to a file and return its absolute path."""
    counter = iter(range(1000))

    def write(text: str) -> str:
        path = tmp_path / f"patch{next(counter)}.py"
        path.write_text(text)
        return str(path)

    return write
