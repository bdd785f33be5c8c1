"""The shell's commands, one module per group; importing this package declares them all."""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> None:
    """Import every command module in this package (each declares its commands)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


load_all()
