"""Where the process's default :class:`otrace.runtime.Runtime` is kept.

This bottom-layer module holds one reference so that the program-facing functions of lower
layers (``otrace.tracing.trace``, ``otrace.holds.pending``, ``otrace.log.announce`` called from
program code) can reach the default runtime without importing the runtime module above them.
Code that has a runtime (sessions, commands, consoles, web pieces, wrappers) uses it instead.
``otrace.runtime`` registers the factory when it is imported (``import otrace`` does that).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

# The one module-level reference to the default runtime (everything else hangs off it).
_state: dict[str, Any] = {"runtime": None, "factory": None}
# Re-entrant: building the runtime allocates thousands of objects, so a collection may run a
# program's finalizer there, on this thread, which may use otrace (announce, tag) and so ask
# for the default runtime again.  That inner call builds one and installs it; the outer one
# then keeps it (the first built wins) and drops its own.
_lock = threading.RLock()


def set_factory(factory: Callable[[], Any]) -> None:
    """Called once by :mod:`otrace.runtime` at import."""
    _state["factory"] = factory


def get() -> Any:
    """The default runtime, built on first use.  Any thread."""
    rt = _state["runtime"]
    if rt is None:
        with _lock:
            rt = _state["runtime"]
            if rt is None:
                factory = _state["factory"]
                if factory is None:  # pragma: no cover - otrace/__init__ imports the runtime
                    raise RuntimeError("otrace.runtime was not imported")
                built = factory()
                rt = _state["runtime"]  # (a finalizer's call, during factory(), built one)
                if rt is None:
                    rt = _state["runtime"] = built
    return rt


def peek() -> Any:
    """The default runtime if one was built, else None (never builds one)."""
    return _state["runtime"]


def replace(rt: Any) -> Any:
    """Make ``rt`` the default (None: build a new one on next use); returns the old one."""
    with _lock:
        old = _state["runtime"]
        _state["runtime"] = rt
    return old
