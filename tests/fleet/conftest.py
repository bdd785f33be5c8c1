"""The fleet tests share the service tests' helpers (a served program, tmux consoles)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
