"""The ``log_*`` parameters, applied to the ``otrace`` logger only.

``log_level`` sets the ``otrace`` logger's level; ``log_remote host[:port]`` sends its records
to a logging ``SocketHandler`` (port 9020 by default), and an empty value removes it.  The
root logger and the host application's handlers are never touched.

Thread safety: the listener runs in the thread that changes the parameter (the shell's).
"""

from __future__ import annotations

import logging
import logging.handlers
from typing import Any

from otrace.log import logger
from otrace.params import Params

DEFAULT_PORT = 9020


class LogParams:
    """Applies one runtime's ``log_*`` parameters (owns the remote handler, if any)."""

    def __init__(self) -> None:
        self.remote: logging.Handler | None = None

    def on_param(self, name: str, old: Any, new: Any) -> None:
        if name == "log_level":
            logger.setLevel(new)
        elif name == "log_remote":
            if self.remote is not None:
                logger.removeHandler(self.remote)
                self.remote.close()
                self.remote = None
            if new:
                host, _, port = str(new).partition(":")
                self.remote = logging.handlers.SocketHandler(host, int(port or DEFAULT_PORT))
                logger.addHandler(self.remote)

    def install(self, params: Params) -> None:
        """Apply the log parameters from now on (idempotent)."""
        if self.on_param not in params._listeners:
            params.add_listener(self.on_param)
            params.add_guard(check)


def check(name: str, value: Any) -> None:
    if name == "log_remote" and value:
        from otrace.errors import ParamError

        host, _, port = str(value).partition(":")
        if not host or (port and not port.isdigit()):
            raise ParamError("log_remote: expected host[:port]")
