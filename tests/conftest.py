"""Shared fixtures: every test starts with default parameters and an empty context store."""

from __future__ import annotations

import pytest

from otrace.contexts import STORE
from otrace.params import PARAMS


@pytest.fixture(autouse=True)
def _fresh_state():
    PARAMS.reset()
    STORE.clear()
    yield
    STORE.clear()
    PARAMS.reset()


@pytest.fixture(scope="module")
def browser():
    """A headless Debian Chromium per test module.  Not per session: Playwright's sync API
    keeps an asyncio loop running in this thread while it is open, which later async tests
    could not share."""
    from tests.chromium import launch

    with launch() as b:
        yield b
