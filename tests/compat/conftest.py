"""Fixtures for the compatibility tests: a fresh toy program, a clean engine around each test."""

from __future__ import annotations

import importlib

import pytest

from otrace import holds, log
from otrace.compat import OTrace
from otrace.contexts.store import STORE
from otrace.params import PARAMS
from otrace.tracing import patching, unwrap_all


@pytest.fixture(autouse=True)
def clean_engine():
    PARAMS.reset()
    STORE.clear()
    yield
    holds.release_all("shutdown")
    patching.unpatch_all()
    OTrace.clear_trace()
    unwrap_all()
    STORE.clear()
    PARAMS.reset()


@pytest.fixture
def shop():
    from tests.shell import shop as module

    return importlib.reload(module)


@pytest.fixture
def announced():
    lines: list[str] = []
    log.add_sink(lines.append)
    yield lines
    log.remove_sink(lines.append)
