"""Named loggers.

otrace logs under the ``otrace`` logger only; it never installs handlers on the root logger
nor changes its level (the original did, which changed the host application's logging).
"""

from __future__ import annotations

import logging

logger = logging.getLogger("otrace")


def get_logger(name: str) -> logging.Logger:
    """Return the child logger ``otrace.<name>``."""
    return logger.getChild(name)


# -- announcements -----------------------------------------------------------------------
# Trace events ("Cart.boom:ex-ZeroDivisionError:261121-04-40-49") are announced to the
# operator as they happen, from whichever thread traced them.  A console registers a sink
# that prints above its prompt; with no sink they go to stderr.

_sinks: list = []
_STDERR_ESCAPES = {
    c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if c not in (9, 10)
}


def add_sink(sink) -> None:
    """Send announcements to ``sink(text)`` (called from any thread; must not block long)."""
    _sinks.append(sink)


def remove_sink(sink) -> None:
    if sink in _sinks:
        _sinks.remove(sink)


def announce(text: str) -> None:
    """Tell the operator about a trace event.  Safe from any thread; never raises."""
    sinks = list(_sinks)
    if not sinks:
        import sys

        try:  # the lowest layer: escape control characters here (no console escapes them)
            sys.stderr.write(text.translate(_STDERR_ESCAPES) + "\n")
        except Exception:
            pass
        return
    for sink in sinks:
        try:
            sink(text)
        except Exception:
            logger.exception("announcement sink failed")
