"""Fixtures for the compatibility tests: a fresh toy program (the root conftest gives each
test its own runtime, closed afterwards)."""

from __future__ import annotations

import importlib

import pytest

from otrace.compat import OTrace


@pytest.fixture(autouse=True)
def _forget_compat_state():
    yield
    OTrace._pending.clear()  # names waiting for trace_entity belong to the test


@pytest.fixture
def shop():
    from tests.shell import shop as module

    return importlib.reload(module)


@pytest.fixture
def announced(runtime):
    lines: list[str] = []
    runtime.add_sink(lines.append)
    yield lines
    runtime.remove_sink(lines.append)
