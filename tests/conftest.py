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


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for the whole run (Playwright allows one per thread)."""
    from tests.chromium import launch

    with launch() as b:
        yield b
