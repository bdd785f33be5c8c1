"""Fixtures for the tracing tests: a clean engine, store and parameters around each test."""

from __future__ import annotations

import pytest

from otrace import holds, log
from otrace.contexts.store import STORE
from otrace.params import PARAMS
from otrace.tracing import unwrap_all


@pytest.fixture(autouse=True)
def clean_engine():
    PARAMS.reset()
    STORE.clear()
    yield
    holds.release_all("shutdown")
    unwrap_all()
    STORE.clear()
    PARAMS.reset()


@pytest.fixture
def announced():
    """Collect announcements instead of writing them to stderr."""
    lines: list[str] = []
    log.add_sink(lines.append)
    yield lines
    log.remove_sink(lines.append)


@pytest.fixture
def sample():
    from tests.tracing import sample as module

    return module
