"""The Sphinx docs build without warnings (as .ci/run builds them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_sphinx_builds_the_docs_without_warnings(tmp_path):
    pytest.importorskip("sphinx", reason="the docs extra: pip install -e '.[docs]'")
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "docs",
            str(tmp_path / "html"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    index = (tmp_path / "html" / "index.html").read_text()
    for page in ("GettingStarted", "UseWithTornado", "commands", "differences"):
        assert f'href="{page}.html"' in index, page
