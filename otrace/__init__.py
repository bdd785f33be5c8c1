"""otrace: an object-shell debugger for live Python servers.

Embed :class:`OShell` in a program's main (or call :func:`set_trace`), then browse the
running program as a filesystem under ``/osh``, trace functions, hold requests and patch
code from the console.  See README.rst and docs/.
"""

from __future__ import annotations

__version__ = "0.40.0"

from otrace.errors import OTraceError, OTraceException  # noqa: E402
from otrace.oshell import OShell, set_trace  # noqa: E402
from otrace.passwords import encrypt_password, verify_password  # noqa: E402
from otrace.runtime import Runtime  # noqa: E402 - also registers the default runtime

__all__ = [
    "OShell",
    "OTraceError",
    "OTraceException",
    "Runtime",
    "encrypt_password",
    "set_trace",
    "verify_password",
]
