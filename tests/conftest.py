"""Shared fixtures: every test runs on its own runtime (default parameters, empty store)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otrace import log
from otrace.runtime import Runtime, use


@pytest.fixture(autouse=True)
def runtime() -> Iterator[Runtime]:
    """A fresh :class:`Runtime`, the default one for the test's duration (``tests.rt`` names
    its store and parameters); closed afterwards (holds released, wrappers and patches
    removed)."""
    with use() as rt:
        yield rt
        rt.close()


@pytest.fixture
def announced() -> Iterator[list[str]]:
    """The default runtime's announcements, collected (instead of going to the
    ``otrace.announce`` logger) for the test's duration."""
    lines: list[str] = []
    log.add_sink(lines.append)
    yield lines
    log.remove_sink(lines.append)


@pytest.fixture(scope="module")
def browser():
    """A headless Debian Chromium per test module.  Not per session: Playwright's sync API
    keeps an asyncio loop running in this thread while it is open, which later async tests
    could not share."""
    from tests.chromium import launch

    with launch() as b:
        yield b
