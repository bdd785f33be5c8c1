"""Fixtures for the tracing tests (each test has its own runtime: tests/conftest.py)."""

from __future__ import annotations

import pytest

from otrace import log


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
