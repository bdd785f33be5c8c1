"""Pygments' own test suite passes with Pygments traced (issue 20).

Pygments' tests ship only in its sdist: set ``OTRACE_PYGMENTS_SDIST`` to an unpacked sdist of
the installed version (``pip download pygments==X --no-binary :all: --no-deps``) to run this;
otherwise it is skipped.  Marker ``suite``.
"""

from __future__ import annotations

import os

import pytest

from benchmarks.pygments_suite import run_child

SDIST = os.environ.get("OTRACE_PYGMENTS_SDIST", "")
pytestmark = [
    pytest.mark.suite,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        not SDIST or not os.path.isdir(os.path.join(SDIST, "tests")),
        reason="OTRACE_PYGMENTS_SDIST does not name an unpacked Pygments sdist",
    ),
]


@pytest.mark.parametrize("mode", ["off", "exceptions", "nomatch"])
def test_pygments_suite_passes_with_pygments_traced(mode):
    got = run_child(SDIST, mode, timeout=1700)
    assert got["returncode"] == 0 and got["report"]["status"] == 0, got["summary"]
    assert got["report"]["traced"] > 100
