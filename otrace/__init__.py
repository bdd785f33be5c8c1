"""otrace: an object-shell debugger for live Python servers.

Embed :class:`OShell` in a program's main (or call :func:`set_trace`), then browse the
running program as a filesystem under ``/osh``, trace functions, hold requests and patch
code from the console.  See README.rst and docs/.

The original otrace's module-level names work as before (``from otrace import OShell,
traceassert``; ``otrace.OTrace.add_trace(...)``, ``otrace.tag(obj)``, ...): see
:mod:`otrace.compat`.
"""

from __future__ import annotations

from otrace._version import __version__ as __version__
from otrace.activation import install  # noqa: E402
from otrace.compat import (  # noqa: E402
    DefaultCallback,
    OTrace,
    TraceCallback,
    get_tag,
    schedule_callback,
    set_tag,
    tag,
    traceassert,
    untag,
)
from otrace.errors import OTraceError, OTraceException  # noqa: E402
from otrace.oshell import OShell, set_trace  # noqa: E402
from otrace.passwords import encrypt_password, verify_password  # noqa: E402
from otrace.runtime import Runtime  # noqa: E402 - also registers the default runtime
from otrace.tracing.api import trace, untrace  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """The ``otrace`` command (see :mod:`otrace.cli`)."""
    from otrace.cli import main as cli_main

    return cli_main(argv)


__all__ = [
    "DefaultCallback",
    "OShell",
    "OTrace",
    "OTraceError",
    "OTraceException",
    "TraceCallback",
    "Runtime",
    "encrypt_password",
    "install",
    "get_tag",
    "main",
    "schedule_callback",
    "set_tag",
    "set_trace",
    "tag",
    "trace",
    "traceassert",
    "untag",
    "untrace",
    "verify_password",
]
