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
# that prints above its prompt; with no sink they go to the ``otrace.announce`` logger at
# INFO (never to sys.stderr directly: the program owns its stderr, and test runners such as
# Tornado's fail a run that writes to it).

_sinks: list = []
_announce_log = logger.getChild("announce")


def add_sink(sink) -> None:
    """Send announcements to ``sink(text)`` (called from any thread; must not block long)."""
    _sinks.append(sink)


def remove_sink(sink) -> None:
    if sink in _sinks:
        _sinks.remove(sink)


def announce(text: str, level: int = logging.INFO) -> None:
    """Tell the operator about a trace event.  Safe from any thread; never raises.

    ``level`` is used only without a console: WARNING for what the operator must see even
    when the program configured no logging (Python then prints warnings to stderr).
    """
    sinks = list(_sinks)
    if not sinks:
        try:
            _announce_log.log(level, "%s", text)
        except Exception:
            pass
        return
    for sink in sinks:
        try:
            sink(text)
        except Exception:
            logger.exception("announcement sink failed")
