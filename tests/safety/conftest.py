"""Fixtures for the safety tests (each test has its own runtime: tests/conftest.py)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from tornado.ioloop import IOLoop

import otrace.shell.commands  # noqa: F401 - declares the commands
from otrace import holds


@pytest.fixture
def loop_thread():
    """A Tornado IOLoop running in a daemon thread: {"loop", "thread"}."""
    ready = threading.Event()
    box: dict = {}

    def run():
        asyncio.set_event_loop(asyncio.new_event_loop())
        box["loop"] = IOLoop.current()
        box["thread"] = threading.current_thread()
        ready.set()
        box["loop"].start()

    thread = threading.Thread(target=run, name="ioloop", daemon=True)
    thread.start()
    assert ready.wait(5)
    yield box
    holds.set_eventloop_callback(None)
    loop = box["loop"]
    loop.add_callback(loop.stop)
    thread.join(5)
    if not thread.is_alive():
        loop.close(all_fds=True)


def loop_alive(loop, timeout: float = 5.0) -> bool:
    """True if the loop runs a callback within ``timeout`` seconds."""
    done = threading.Event()
    loop.add_callback(done.set)
    return done.wait(timeout)


def in_thread(func, timeout: float = 20.0):
    """Run ``func`` in a daemon thread; (finished, result or exception)."""
    box: dict = {}

    def run():
        try:
            box["value"] = func()
        except BaseException as exc:  # noqa: B036 - handed back to the test
            box["value"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    return (not t.is_alive()), box.get("value")


def pytest_terminal_summary(terminalreporter) -> None:
    """The fuzz suite's worst program-thread stall per mode, whatever the outcome."""
    import sys

    for name, module in list(sys.modules.items()):
        reports = getattr(module, "REPORTS", None) if name.endswith("test_fuzz") else None
        if reports:
            terminalreporter.section("fuzz: worst program-thread stalls")
            for line in reports:
                terminalreporter.write_line(line)
