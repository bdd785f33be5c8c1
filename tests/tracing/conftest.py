"""Fixtures for the tracing tests (each test has its own runtime: tests/conftest.py)."""

from __future__ import annotations

import pytest

from otrace.tracing import instrument


@pytest.fixture(autouse=True, params=["inplace", "wrapper"])
def backend(request):
    """Every tracing test runs with functions instrumented in place, and with wrappers."""
    instrument.FORCE_WRAPPER = request.param == "wrapper"
    yield request.param
    instrument.FORCE_WRAPPER = False


def original_of(func):
    """The program's function below a tracing wrapper (itself when traced in place)."""
    return getattr(func, "_otrace_orig_function", func)


@pytest.fixture
def sample():
    from tests.tracing import sample as module

    return module
