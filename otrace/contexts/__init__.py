"""Trace contexts: the record left behind by each trace event, and where records are kept.

* :mod:`.record` -- the :class:`TraceContext` record, its kinds and its trace id;
* :mod:`.capture` -- snapshots of frames, arguments and exceptions;
* :mod:`.store` -- ``/osh/recent`` (bounded), ``/osh/saved`` and the id index;
* :mod:`.safe` -- ``repr``/``str`` that never raise and never run away.
"""

from otrace.contexts.record import KINDS, FrameContext, TraceContext, make_trace_id, parse_trace_id
from otrace.contexts.safe import safe_repr, safe_str
from otrace.contexts.store import ContextStore

__all__ = [
    "KINDS",
    "ContextStore",
    "FrameContext",
    "TraceContext",
    "make_trace_id",
    "parse_trace_id",
    "safe_repr",
    "safe_str",
]
