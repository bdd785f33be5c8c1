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
