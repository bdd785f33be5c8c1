"""What the accelerator tests share: loading an extension, or skipping without it."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

REQUIRED = os.environ.get("OTRACE_REQUIRE_SPEEDUPS") == "1"


def extension(name: str, *, unused_when_pure: bool = True) -> ModuleType:
    """``otrace.<name>``; a skip where it is not built, a failure when
    ``OTRACE_REQUIRE_SPEEDUPS=1`` (CI).  With ``OTRACE_PURE=1`` otrace does not use it:
    tests that compare what otrace uses skip then (``unused_when_pure``)."""
    if unused_when_pure and os.environ.get("OTRACE_PURE") == "1":
        pytest.skip(f"OTRACE_PURE=1: otrace.{name} is not used")
    try:
        return importlib.import_module(f"otrace.{name}")
    except ImportError:
        if REQUIRED:
            raise
        pytest.skip(f"otrace.{name} is not built (no compiler or Python headers?)")
