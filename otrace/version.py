"""The version of otrace (one place, imported by the package and the shell banner)."""

from __future__ import annotations

__version__ = "0.40.0"
