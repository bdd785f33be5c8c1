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
from otrace.params import PARAMS, Params

DEFAULT_PORT = 9020
_remote: logging.Handler | None = None


def on_param(name: str, old: Any, new: Any) -> None:
    global _remote
    if name == "log_level":
        logger.setLevel(new)
    elif name == "log_remote":
        if _remote is not None:
            logger.removeHandler(_remote)
            _remote.close()
            _remote = None
        if new:
            host, _, port = str(new).partition(":")
            _remote = logging.handlers.SocketHandler(host, int(port or DEFAULT_PORT))
            logger.addHandler(_remote)


def check(name: str, value: Any) -> None:
    if name == "log_remote" and value:
        from otrace.errors import ParamError

        host, _, port = str(value).partition(":")
        if not host or (port and not port.isdigit()):
            raise ParamError("log_remote: expected host[:port]")


def install(params: Params = PARAMS) -> None:
    """Apply the log parameters from now on (idempotent)."""
    if on_param not in params._listeners:
        params.add_listener(on_param)
        params.add_guard(check)
