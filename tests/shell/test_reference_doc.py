"""docs/commands.rst is made from the declarations; it must be up to date."""

from __future__ import annotations

import os

from otrace.shell.reference import reference_rst

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_command_reference_is_current():
    with open(os.path.join(ROOT, "docs", "commands.rst"), encoding="utf-8") as f:
        assert f.read() == reference_rst(), (
            "run: python -m otrace.shell.reference > docs/commands.rst"
        )
