"""Fixtures for the tracing tests: a clean engine, store and parameters around each test."""

from __future__ import annotations

import pytest

from otrace import holds, log
from otrace.contexts.store import STORE
from otrace.params import PARAMS
from otrace.tracing import instrument, unwrap_all


@pytest.fixture(autouse=True, params=["inplace", "wrapper"])
def backend(request):
    """Every tracing test runs with functions instrumented in place, and with wrappers."""
    instrument.FORCE_WRAPPER = request.param == "wrapper"
    yield request.param
    instrument.FORCE_WRAPPER = False


def original_of(func):
    """The program's function below a tracing wrapper (itself when traced in place)."""
    return getattr(func, "_otrace_orig_function", func)


@pytest.fixture(autouse=True)
def clean_engine(backend):
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
