"""Named loggers.

otrace logs under the ``otrace`` logger only; it never installs handlers on the root logger
nor changes its level (the original did, which changed the host application's logging).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from otrace import _default

logger = logging.getLogger("otrace")


def get_logger(name: str) -> logging.Logger:
    """Return the child logger ``otrace.<name>``."""
    return logger.getChild(name)


# -- announcements -----------------------------------------------------------------------
# Trace events ("Cart.boom:ex-ZeroDivisionError:261121-04-40-49") are announced to the
# operator as they happen, from whichever thread traced them, as ``Announcement`` events on
# the runtime's bus (``Runtime.announce``).  These functions act on the default runtime.


def add_sink(sink: Callable[[str], None]) -> None:
    """Send the default runtime's announcements to ``sink(text)`` (any thread; must not block)."""
    _default.get().add_sink(sink)


def remove_sink(sink: Callable[[str], None]) -> None:
    _default.get().remove_sink(sink)


def announce(text: str, level: int = logging.INFO) -> None:
    """Tell the operator about a trace event (default runtime).  Any thread; never raises.

    ``level``: for the ``otrace.announce`` logger when no console listens.
    """
    _default.get().announce(text, level)
