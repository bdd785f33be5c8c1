"""The one way a trace event becomes a context: :class:`Recorder`.

Every producer -- traced calls and exceptions, ``traceassert``, tags, the traceback page,
``otrace -f`` -- asks the runtime's recorder to record.  It makes the context, registers a
break or hold when asked, stores it (the store emits ``ContextRecorded``), and announces the
given lines (``Announcement`` events).  What happens next (blocking on the break, handing the
hold to the wrapper, starting pdb) stays with the caller, which knows its thread.

Thread rules: :meth:`Recorder.record` runs on the thread of the event (a program thread or the
event loop) and never waits; :meth:`Recorder.announce` may be called from any thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from otrace.contexts import record as _record
from otrace.contexts.record import TraceContext
from otrace.contexts.safe import terminal_text
from otrace.contexts.store import ContextStore
from otrace.events import Announcement, EventBus
from otrace.holds import Break, Hold, HoldTable
from otrace.params import Params

# Announcements without a console: this logger does not propagate, so a program's own
# logging (and test runners that count every record, as Tornado's does) never sees them;
# attach a handler to it to collect them.  Warnings (the traceback page's PIN) still reach
# stderr through logging's last resort when it has no handler.
_announce_log = logging.getLogger("otrace.announce")
_announce_log.propagate = False
# an Announcement made as its class would, at half the cost (one per line announced)
_new = object.__new__
_set_text = Announcement.__dict__["text"].__set__


class Recorder:
    """Makes, registers, stores and announces contexts for one runtime."""

    def __init__(
        self, store: ContextStore, holds: HoldTable, params: Params, events: EventBus
    ) -> None:
        self.store = store
        self.holds = holds
        self.params = params
        self.events = events

    def record(
        self,
        kind: str,
        name: str,
        label: str,
        values: dict[str, Any],
        trc: dict[str, Any] | None = None,
        *,
        say: Iterable[str | Callable[[TraceContext], str]] = (),
        save: bool = False,
        truncate: bool = True,
        prepare: Callable[[TraceContext], None] | None = None,
    ) -> tuple[TraceContext, Break | Hold | None]:
        """Record one context; returns it and its break or hold (for kinds breaks/holds).

        ``say``: lines announced after storing, each a string or ``f(ctx)`` (most need the new
        id); they are cut to ``log_truncate`` unless ``truncate`` is False.  A ``holds`` context
        must be recorded on the event-loop thread.  ``prepare(ctx)`` runs first; if it raises,
        nothing is recorded and the exception propagates.
        """
        fast = _record.context_fast  # (C, for the usual case: see record.context_fast)
        ctx = fast(kind, name, label, values, trc) if fast is not None else None
        if ctx is None:
            ctx = TraceContext(kind, name, label, values, trc)
        if prepare is not None:
            prepare(ctx)
        live: Break | Hold | None = None
        if kind == "breaks":
            live = self.holds.new_break(ctx)
        elif kind == "holds":
            live = self.holds.new_hold(ctx)
        self.store.add(ctx)
        if save:
            self.store.save(ctx)
        for line in say:
            text = line(ctx) if callable(line) else line
            self.announce(text, truncate=truncate)
        return ctx, live

    def resolve_kind(self, kind: str, action: str | None, hold_ok: bool) -> tuple[str, str]:
        """The kind to record for ``action`` on this thread, and a refusal note (or "").

        ``break``, ``pdb`` and ``ipdb`` need a thread that may block; ``hold`` needs ``hold_ok`` (an awaiting
        caller on a running loop).  Traced thread.
        """
        if action == "break":
            if self.holds.can_block():
                return "breaks", ""
            return kind, "break refused"
        if action in ("pdb", "ipdb") and not self.holds.can_block():
            return kind, f"{action} refused"  # a debugger prompt blocks the loop like a break
        if action == "hold":
            if hold_ok:
                return "holds", ""
            return kind, "hold ignored"
        return kind, ""

    def heard(self, level: int = logging.INFO) -> bool:
        """Whether an announcement at ``level`` would reach anybody now: a console (any
        ``Announcement`` subscriber), or a handler of the ``otrace.announce`` logger -- which
        does not propagate, so without one of its own only logging's last resort (WARNING
        and above, to stderr) would show it.  Any thread; runs no program code."""
        return bool(self.events.subscribers.get(Announcement)) or _logged(level)

    def announce(self, text: str, *, truncate: bool = False, level: int = logging.INFO) -> None:
        """Tell the operator (``Announcement``).  Never raises.

        While nobody listens (no console), the text goes to the ``otrace.announce`` logger at
        ``level`` -- never to ``sys.stderr`` directly: the program owns its stderr (Tornado's
        test runner fails a run that writes to it).  WARNING is for what the operator must
        see even when the program configured no logging (Python prints warnings to stderr).
        """
        if truncate:
            limit = self.params.log_truncate
            if limit and len(text) > limit:
                text = text[:limit] + "..."
        events = self.events
        if events.subscribers.get(Announcement):
            event = _new(Announcement)  # (Announcement(text) without the frozen __init__)
            _set_text(event, text)
            events.emit(event)
            return
        if not _logged(level):  # (before escaping text nobody reads)
            return
        try:
            _announce_log.log(level, "%s", terminal_text(text))  # program data: escaped
        except Exception:
            pass


def _logged(level: int) -> bool:
    """Whether the ``otrace.announce`` logger would show a record at ``level`` anywhere: it
    does not propagate, so without a handler of its own only logging's last resort (WARNING
    and above, to stderr) would."""
    if not _announce_log.isEnabledFor(level):
        return False
    if _announce_log.hasHandlers():
        return True
    last = logging.lastResort
    return last is not None and level >= last.level
