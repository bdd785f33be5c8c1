"""Fixtures: a served program (no terminal, stdin from /dev/null) per test."""

from __future__ import annotations

import pytest
from service_helpers import Server


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path)
    yield srv
    srv.stop()
