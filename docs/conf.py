"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build`` (CI runs it)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from otrace._version import __version__  # noqa: E402

project = "otrace"
author = "the otrace authors"
copyright = "2012-2026, the otrace authors"  # noqa: A001 - Sphinx's name
version = release = __version__

extensions: list[str] = []
root_doc = "index"
exclude_patterns = ["_build"]
# Every page of docs/ is in the table of contents through a glob, so a page added later needs
# no change here; -W then fails only on real errors (bad markup, broken :doc: references).
html_theme = "alabaster"
html_static_path: list[str] = []
highlight_language = "none"  # console transcripts are the common literal block
