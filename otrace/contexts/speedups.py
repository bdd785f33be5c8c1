"""The optional C accelerators, :mod:`otrace._speedups`, :mod:`otrace._frames` and
:mod:`otrace._trace_ids`, when they are built and wanted.

``walk``, ``plain_repr``, ``holds_watched``, ``args_text``, ``bind``, ``frames_holding``,
``freeze_value``, ``freeze_entries`` and ``new_text`` are the first's functions, ``live_records``,
``exc_root``, ``frame_values``, ``exc_line``, ``local_names`` and ``frames_walk`` (its
``walk``) the second's, ``trace_ids`` the third (the trace id's clock, and a context's making and
filing), or None: without a compiler at install time an extension is not
built, ``otrace._frames`` does not load in another CPython release than it was built for, and
``OTRACE_PURE=1`` in the environment (read at import) turns them all off.  Either way
otrace's results are the same; the pure-Python code is only slower.  The functions may be
called from any thread and run none of the program's code.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

walk: Callable[[FrameType | None], tuple[list[CodeType], list[int]]] | None = None
plain_repr: Callable[[object, int], str | None] | None = None
holds_watched: Callable[[object, frozenset], bool] | None = None
args_text: Callable[[str | None, dict, Callable[[object, int], str]], str | None] | None = None
bind: Callable[[tuple, tuple, dict, object], dict | None] | None = None
# the pickle_file freeze's scan of a chain's raw records and its copy of a value (freeze.py)
frames_holding: Callable[[list, frozenset], list[int] | None] | None = None
freeze_value: Callable[..., Any] | None = None
freeze_entries: Callable[..., dict] | None = None
# (lazytext.lazy_text's text made in one call, or None: see lazytext)
new_text: Callable[..., Any] | None = None
live_records: Callable[..., list] | None = None
# (otrace._frames.walk: walk's answer without frame objects, or None off this thread)
frames_walk: Callable[[FrameType | None], tuple[list[CodeType], list[int]] | None] | None = None
# otrace._trace_ids: the trace id's clock (record.new_timestamp), a context's making and
# filing (record.context_fast, record.file_fast) in C
trace_ids: Any = None
# (live_records' marker of an unbound variable: see lazy.variables)
UNBOUND: object = None
# (otrace._frames: frames.frame_locals of a function frame, without f_locals, or None;
# safe.exc_line of the usual exception, or None)
frame_values: Callable[[FrameType], dict[str, Any] | None] | None = None
exc_line: Callable[[BaseException, dict[int, str], int], str | None] | None = None
# otrace._speedups' (enter, leave, recording): instrument.py's per-thread "recording" flag
recording_flag: tuple[Callable[[], bool], Callable[[], None], Callable[[], bool]] | None = None
# (otrace._frames: capture_exception's usual root, (values, trc), in one call, or None)
exc_root: Callable[..., tuple | None] | None = None
# (otrace._frames: the names of the values live_records reads from a frame of a code)
local_names: Callable[[CodeType], tuple[str, ...]] | None = None

if os.environ.get("OTRACE_PURE") != "1":
    try:
        # (by name: the import linter, which cannot read a compiled module, would take a
        # ``from otrace import _speedups`` for an import of the whole package)
        _c = importlib.import_module("otrace._speedups")
    except ImportError:  # not built (no compiler or headers at install): pure Python
        pass
    else:
        walk, plain_repr, holds_watched = _c.walk, _c.plain_repr, _c.holds_watched
        args_text = _c.args_text
        # (getattr: a module built from an older source has not got them)
        frames_holding = getattr(_c, "frames_holding", None)
        freeze_value = getattr(_c, "freeze_value", None)
        freeze_entries = getattr(_c, "freeze_entries", None)
        new_text = getattr(_c, "new_text", None)
        bind = getattr(_c, "bind", None)
        if hasattr(_c, "enter"):
            recording_flag = (_c.enter, _c.leave, _c.recording)
    try:
        trace_ids = importlib.import_module("otrace._trace_ids")
    except ImportError:  # not built
        pass
    try:
        _f = importlib.import_module("otrace._frames")
        live_records, UNBOUND, frames_walk = _f.live_records, _f.UNBOUND, _f.walk
        # (getattr: a module built from an older source has not got them)
        frame_values = getattr(_f, "frame_values", None)
        exc_line, exc_root = getattr(_f, "exc_line", None), getattr(_f, "exc_root", None)
        local_names = getattr(_f, "local_names", None)
    except ImportError:  # not built, or built for another release of CPython
        pass
