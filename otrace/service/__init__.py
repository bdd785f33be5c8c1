"""The otrace service: consoles attach to a running program and detach from it.

:class:`Service` listens on a UNIX socket (and serves the program's own terminal over a
socket pair); each console gets its own shell session, run on threads of its own, and a
bounded output queue.  The wire format is :mod:`otrace.service.protocol`.
"""

from __future__ import annotations

from otrace.service.protocol import VERSION, ProtocolError
from otrace.service.server import Service

__all__ = ["VERSION", "ProtocolError", "Service"]
