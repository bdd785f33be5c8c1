"""Fixture: a real Tornado server on a free port (see tornado_helpers)."""

from __future__ import annotations

import held_app
import pytest
from tornado_helpers import Server

import otrace.tornado as otornado
from otrace import holds
from otrace.tracing import untrace_all


@pytest.fixture
def server():
    held_app.DONE.clear()
    srv = Server().start()
    yield srv
    holds.release_all("shutdown")
    untrace_all()
    srv.stop()
    otornado.detach()
