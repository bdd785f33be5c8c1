"""The tracing engine: wrap functions, evaluate trace conditions, record trace contexts.

Public API (the shell's ``trace``/``untrace``/``tag``/``resume`` commands call these):

* :func:`trace` (``target, parent=None, attr_name=None, *, name, condition, action,
  count``) -> :class:`TraceSpec`; :func:`untrace`; :func:`untrace_all` (wrappers stay, as
  pass-through); :func:`unwrap_all`; :func:`traces` (specs sorted by key; each has
  ``render()``, ``matches``, ``traced``, ``last_error``, ``warnings``);
* :func:`traceassert`; :func:`tag`, :func:`untag`, :func:`get_tag`, :func:`set_tag`;
* :func:`set_debugger_streams` (pdb's streams; the terminal hand-over is a
  :class:`~otrace.events.DebuggerHandover` event);
* :class:`Tracer` -- a runtime's registry (``rt.tracer``); every function above takes
  ``tracer=`` and defaults to the default runtime's;
* breaks and holds are resumed through :mod:`otrace.holds` (``resume``, ``release_all``).

Adding a trace turns ``trace_active`` on; removing the last one turns it off (so
``traceassert`` then raises ``AssertionError`` again).  Every function may be called from any
thread; the wrappers themselves run on whatever thread calls the traced function.
"""

from __future__ import annotations

from otrace.tracing.api import (
    NEVER_WRAPPED,
    trace,
    traces,
    untrace,
    untrace_all,
    unwrap_all,
    wrapped,
)
from otrace.tracing.asserts import READY, traceassert
from otrace.tracing.condition_parse import parse_condition
from otrace.tracing.conditions import (
    Always,
    And,
    ArgTest,
    Not,
    Or,
    Predicate,
    Tagged,
)
from otrace.tracing.debugger import set_debugger_streams
from otrace.tracing.engine import ACTIONS, TraceSpec
from otrace.tracing.registry import Tracer
from otrace.tracing.tags import get_tag, set_tag, tag, untag

__all__ = [
    "ACTIONS",
    "NEVER_WRAPPED",
    "READY",
    "Always",
    "And",
    "ArgTest",
    "Not",
    "Or",
    "Predicate",
    "Tagged",
    "TraceSpec",
    "Tracer",
    "get_tag",
    "parse_condition",
    "set_debugger_streams",
    "set_tag",
    "tag",
    "trace",
    "traceassert",
    "traces",
    "untag",
    "untrace",
    "untrace_all",
    "unwrap_all",
    "wrapped",
]
