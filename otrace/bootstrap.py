"""Starting otrace inside a process that did not plan for it (``otrace inject PID``).

:func:`start_injected` is what the code that ``otrace inject`` places in a running program
calls, on the program's main thread, at a point where the interpreter runs no other Python
code of that thread (a pending call: see :mod:`otrace.inject`).  It starts otrace the way
the program would have: :func:`otrace.install` where this otrace has one (the attachable
service), else the process's default runtime -- and says what it did, for the injector to
report.

Calling it again does nothing more and says so.  It never raises into the program: the
injected code wraps it and reports any failure to the injector.

Thread safety: any thread may call :func:`start_injected` (a lock makes the start once);
the injected code calls it on the main thread.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

# Process-wide by nature: whether (and how) otrace was started by injection in this process.
STARTED: dict[str, Any] | None = None
_LOCK = threading.Lock()


def _event_loop() -> str | None:
    """The kind of event loop running on this thread, if any (the service attaches to it)."""
    try:
        import asyncio

        loop = asyncio.get_running_loop()
    except (ImportError, RuntimeError):
        return None
    tornado = sys.modules.get("tornado.ioloop")
    if tornado is not None:
        try:
            if tornado.IOLoop.current(instance=False) is not None:
                return "tornado"
        except Exception:
            pass
    return type(loop).__name__


def start_injected(**options: Any) -> dict[str, Any]:
    """Start otrace in this process (once); what was done, as JSON-able facts.

    ``options`` go to :func:`otrace.install` when this otrace has it.
    """
    global STARTED
    with _LOCK:
        if STARTED is not None:
            return {**STARTED, "again": True}
        from otrace.runtime import default

        # the package itself (imported before this module was); looked up, not imported,
        # since the package's top level reaches every layer (the command line included)
        otrace = sys.modules["otrace"]

        install = getattr(otrace, "install", None)
        socket_path = ""
        if callable(install):
            installation = install(**options)
            how = "otrace.install"
            service = getattr(getattr(installation, "shell", None), "service", None)
            socket_path = getattr(service, "path", None) or ""  # for otrace attach --inject
        else:
            default()
            how = "runtime"
        STARTED = {
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "otrace": getattr(otrace, "__version__", "?"),
            "otrace_path": os.path.dirname(os.path.abspath(otrace.__file__ or "")),
            "thread": threading.current_thread().name,
            "main_thread": threading.current_thread() is threading.main_thread(),
            "event_loop": _event_loop(),
            "started": how,
            "socket": socket_path,
        }
        return dict(STARTED)
