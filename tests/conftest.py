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
