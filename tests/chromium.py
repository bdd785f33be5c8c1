"""Debian's Chromium for the browser tests, started the one way this machine allows."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # evil.test is another name for this machine: a host the traceback page must not trust
    "--host-resolver-rules=MAP evil.test 127.0.0.1",
]


@contextlib.contextmanager
def launch(*extra_args: str) -> Iterator[Any]:
    """A headless Chromium (skips the test when Debian's chromium is not installed)."""
    if not os.path.exists(CHROMIUM) or shutil.which("chromium") is None:
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (bash .ci/setup installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args], headless=True
        )
        try:
            yield browser
        finally:
            browser.close()
