"""Tornado's own test suite passes in one process with twelve Tornado modules traced (issue 20).

Each mode runs the suite shipped in the installed tornado package (``tornado.test.runtests``)
in a subprocess through ``benchmarks/tornado_suite.py``: every function and method of the
modules in ``MODULES`` traced with ``otrace.trace``, then the suite, which fails on any
failure, error, log record at INFO or above, or byte written to stderr; the tests of
Tornado's own that assert wall-clock bounds are skipped (``TIMING_TESTS`` there: a loaded
machine fails them untraced too).  Select with
``-m suite`` (or deselect with ``-m "not suite"``); its wall-time ratio is
benchmarks/tornado_suite.py's figure, not asserted here.
"""

from __future__ import annotations

import pytest

from benchmarks.tornado_suite import MODULES, run_child

pytestmark = [pytest.mark.suite, pytest.mark.timeout(1800)]


@pytest.mark.parametrize("mode", ["off", "exceptions", "nomatch"])
def test_tornado_suite_passes_with_tornado_traced(mode):
    got = run_child(mode, timeout=1700)
    report = got["report"]
    assert got["returncode"] == 0 and report.get("status") == 0, (
        f"{mode}: {got['summary']} {got['failed']}\n{got['tail']}"
    )
    assert got["summary"] and got["summary"][0].startswith("Ran ")
    assert len(MODULES) == 12 and report["traced"] > 600
    # only dataclass-generated methods (no source) need a wrapper
    assert report["wrapped"] <= 8, report["wrapped_because"]
