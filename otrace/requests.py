"""In-flight web requests and the rules that hold them, independent of any web framework.

A server integration (``otrace.tornado``) reports each request to the runtime's
:class:`RequestTable` (``rt.requests``) when its handler starts (:meth:`RequestTable.start`) and when it ends (:meth:`RequestTable.finish`);
``/osh/requests`` presents the table.  The hot path is two dict operations and two clock
reads per request, with no lock: CPython's dict operations are atomic, and readers take a
copy (``list(...)``) before they look.

:class:`HoldRules` (``rt.hold_rules``) are the ``hold -c CONDITION`` rules: a Python expression over ``request``
and ``handler``, tested by the integration at the start of each request.  A condition that
raises, or takes longer than :data:`SLOW_CONDITION` seconds, counts as no match and is
reported once (a debugging hook never breaks its host).

Thread rules: :meth:`RequestTable.start`, :meth:`RequestTable.finish` and
:meth:`HoldRules.match` run on the server's event-loop thread; everything else may be called
from any thread (the shell's).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from otrace.contexts.safe import safe_str
from otrace.errors import OTraceError

if TYPE_CHECKING:
    from otrace.params import Params

SLOW_CONDITION = 0.05
"""Seconds after which a hold condition counts as slow (its result is then ignored)."""


class RequestRecord:
    """One request: its handler, the coroutine running it, and how it ended.

    ``coro`` is the outermost coroutine of the request (the handler's ``_execute``), from
    which the await chain is followed while it runs; ``task`` the asyncio task running it.
    """

    __slots__ = (
        "number",
        "handler",
        "request",
        "coro",
        "task",
        "started",
        "ended",
        "about",
        "status",
        "exception",
        "__weakref__",
    )

    def __init__(self, number: int, handler: Any, request: Any, coro: Any, task: Any) -> None:
        self.number = number
        self.handler = handler
        self.request = request
        self.coro = coro
        self.task = task
        self.started = time.monotonic()
        self.ended: float | None = None
        self.about: tuple[str, str, str, str] | None = None
        self.status: int | None = None
        self.exception: BaseException | None = None

    @property
    def id(self) -> str:
        """The short name under ``/osh/requests`` (``r17``)."""
        return f"r{self.number}"

    def describe(self) -> tuple[str, str, str, str]:
        """(method, URI, remote address, handler class) -- kept once the request ends."""
        if self.about is not None:
            return self.about
        request = self.request
        return (
            str(getattr(request, "method", "?")),
            str(getattr(request, "uri", "?")),
            str(getattr(request, "remote_ip", "?")),
            type(self.handler).__name__,
        )

    @property
    def duration(self) -> float:
        """Seconds from start to end (or to now, while it runs)."""
        end = self.ended if self.ended is not None else time.monotonic()
        return end - self.started

    @property
    def finished(self) -> bool:
        return self.ended is not None


class RequestTable:
    """Requests in flight (``active``, keyed by ``id(handler)``) and the last ``max_recent``
    finished ones (``done``)."""

    def __init__(self, params: Params) -> None:
        self.params = params
        self.active: dict[int, RequestRecord] = {}
        self.done: deque[RequestRecord] = deque()
        self.loop: Any = None  # the program's asyncio loop (for /osh/tasks, await)
        self._numbers = itertools.count(1)

    def start(self, handler: Any, request: Any, coro: Any, task: Any) -> RequestRecord:
        """Note a request whose handler starts now.  Event-loop thread."""
        rec = RequestRecord(next(self._numbers), handler, request, coro, task)
        # keyed by the handler, so the integration finds the record again without storing
        # anything on the handler (a new attribute there would slow every attribute access
        # of that handler: CPython then gives up its shared-key instance layout)
        self.active[id(handler)] = rec
        return rec

    def of_handler(self, handler: Any) -> RequestRecord | None:
        """The running request of ``handler``, if tracked.  Event-loop thread."""
        return self.active.get(id(handler))

    def finish(self, rec: RequestRecord, status: Any, exception: BaseException | None) -> None:
        """Move a request to ``done``, keeping a summary, not the handler, request and task:
        holding on to their object graphs would cost memory and garbage-collector time.
        Event-loop thread (or any, for a request whose coroutine is over)."""
        if rec.ended is not None:
            return
        rec.ended = time.monotonic()
        rec.status = status
        rec.exception = exception
        request = rec.request
        handler = rec.handler
        rec.about = (request.method, request.uri, request.remote_ip, type(handler).__name__)
        if self.active.get(id(handler)) is rec:
            del self.active[id(handler)]
        rec.coro = rec.task = rec.handler = rec.request = None
        done = self.done
        done.append(rec)
        while len(done) > self.params.max_recent:
            done.popleft()

    def running(self) -> list[RequestRecord]:
        """The requests in flight, oldest first.  Any thread.

        A request whose coroutine ended without the handler finishing (a handler with
        ``auto_finish`` off that never calls ``finish``) is filed under ``done`` here.
        """
        recs = sorted(list(self.active.values()), key=lambda r: r.number)
        for rec in recs:
            coro = rec.coro
            if coro is not None and getattr(coro, "cr_frame", True) is None:
                self.finish(rec, getattr(rec.handler, "_status_code", None), None)
        return [rec for rec in recs if rec.ended is None]

    def finished(self) -> list[RequestRecord]:
        """The finished requests kept, oldest first.  Any thread."""
        return list(self.done)

    def get(self, name: str) -> RequestRecord | None:
        """The running request called ``name`` (``r17`` or ``17``), if still running."""
        number = _number(name)
        rec = next((r for r in list(self.active.values()) if r.number == number), None)
        if rec is not None and rec.coro is not None and getattr(rec.coro, "cr_frame", 1) is None:
            self.running()  # its coroutine is over: file it under done
            return None
        return rec

    def get_done(self, name: str) -> RequestRecord | None:
        number = _number(name)
        for rec in list(self.done):
            if rec.number == number:
                return rec
        return None

    def clear(self) -> None:
        """Forget everything (tests)."""
        self.active.clear()
        self.done.clear()


def _number(name: str) -> int | None:
    digits = name[1:] if name[:1] == "r" else name
    return int(digits) if digits.isdigit() else None


# -- hold rules ----------------------------------------------------------------------------
class HoldRule:
    """``hold -c CONDITION [-n N] [--timeout S] [HANDLER...]``.

    ``remaining`` is how many more requests it may hold (None: no limit); ``handlers`` the
    class names it is limited to (any class in the handler's MRO).
    """

    def __init__(
        self,
        number: int,
        condition: str,
        code: Any,
        globals_dict: dict[str, Any],
        *,
        count: int | None = None,
        timeout: float | None = None,
        handlers: tuple[str, ...] = (),
        announce: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.announce = announce
        self.number = number
        self.condition = condition
        self.code = code
        self.globals = globals_dict
        self.remaining = count
        self.timeout = timeout
        self.handlers = handlers
        self.held = 0
        self.errors = 0
        self.last_error = ""
        self._reported = False

    def render(self) -> str:
        """The rule as it would be typed, with what it did so far."""
        parts = [f"#{self.number}", f"-c {self.condition!r}"]
        if self.remaining is not None:
            parts.append(f"-n {self.remaining}")
        if self.timeout is not None:
            parts.append(f"--timeout {self.timeout:g}")
        parts.extend(self.handlers)
        text = " ".join(parts) + f"   held: {self.held}"
        if self.last_error:
            text += f"   last error: {self.last_error}"
        return text

    def applies_to(self, handler: Any) -> bool:
        if not self.handlers:
            return True
        return any(cls.__name__ in self.handlers for cls in type(handler).__mro__)

    def test(self, handler: Any, request: Any) -> bool:
        """Evaluate the condition; an error or a slow answer is no match.  Loop thread."""
        start = time.perf_counter()
        try:
            result = bool(eval(self.code, self.globals, {"request": request, "handler": handler}))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: B036 - even exit() in a condition is no match
            self._fail(f"{type(exc).__name__}: {safe_str(exc, 200)}")
            return False
        elapsed = time.perf_counter() - start
        if elapsed > SLOW_CONDITION:
            self._fail(f"took {elapsed * 1000:.0f} ms (over {SLOW_CONDITION * 1000:.0f} ms)")
            return False
        return result

    def _fail(self, why: str) -> None:
        self.errors += 1
        self.last_error = why
        if not self._reported:
            self._reported = True
            self.announce(
                f"hold #{self.number}: condition {self.condition!r} {why}; counted as no match"
            )


class HoldRules:
    """The active hold rules.  Readers on the loop see an immutable tuple (no lock).

    ``_lock`` is taken on the loop (:meth:`match` takes a rule's count) and by the shell
    (:meth:`add`, :meth:`remove`).  The shell's side is call-free -- it builds the new tuple
    outside and swaps it in if ``rules`` is unchanged (else builds again) -- so no finalizer
    can run while the shell holds it, and the loop never waits for one that waits for it.
    """

    def __init__(self, announce: Callable[[str], None]) -> None:
        self.announce = announce  # how a failing condition is reported (once)
        self.rules: tuple[HoldRule, ...] = ()
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)

    def add(
        self,
        condition: str,
        globals_dict: dict[str, Any],
        *,
        count: int | None = None,
        timeout: float | None = None,
        handlers: tuple[str, ...] = (),
    ) -> HoldRule:
        """Compile and add a rule; OTraceError if the condition does not compile."""
        try:
            code = compile(condition, "<hold condition>", "eval")
        except SyntaxError as exc:
            raise OTraceError(f"hold: invalid condition {condition!r}: {exc.msg}") from None
        rule = HoldRule(
            next(self._numbers),
            condition,
            code,
            globals_dict,
            count=count,
            timeout=timeout,
            handlers=handlers,
            announce=self.announce,
        )
        while True:  # (again only if the loop used up a rule meanwhile)
            rules = self.rules
            new = (*rules, rule)
            with self._lock:  # call-free (see the class docstring)
                if self.rules is rules:
                    self.rules = new
                    return rule

    def remove(self, number: int | None = None) -> list[HoldRule]:
        """Remove rule ``number`` (None: all); returns what was removed."""
        while True:  # (again only if the loop used up a rule meanwhile)
            rules = self.rules
            gone = [r for r in rules if number is None or r.number == number]
            kept = tuple(r for r in rules if r not in gone)
            with self._lock:  # call-free (see the class docstring)
                if self.rules is rules:
                    self.rules = kept
                    return gone

    def match(self, handler: Any, request: Any) -> HoldRule | None:
        """The first rule that holds this request (its count taken), if any.  Loop thread."""
        for rule in self.rules:
            if not rule.applies_to(handler) or not rule.test(handler, request):
                continue
            with self._lock:
                if rule not in self.rules:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self.rules = tuple(r for r in self.rules if r is not rule)
                rule.held += 1
            return rule
        return None
