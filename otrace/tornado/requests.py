"""Request tracking and holds by condition for every ``tornado.web.RequestHandler``.

:func:`install` wraps three methods of ``RequestHandler`` once for the whole process, so
any application is tracked without changes to its handlers: ``_execute`` (which makes the
request's coroutine) notes the request in :data:`otrace.requests.REQUESTS` and tests the
``hold -c`` rules when there are any; ``finish`` files it under ``done`` with its status;
``_handle_request_exception`` notes the exception it ended with.  A request whose handler
never finishes stays listed while its coroutine runs (see :meth:`RequestTable.running`).

A request matching a hold rule is held at the start of its handler method (after
``prepare``): the method is shadowed on that one handler instance by a coroutine that awaits
a hold (a context in ``/osh/recent/holds``) and then calls the real method.

Thread rules: the wrappers run on the event-loop thread; :func:`install` and
:func:`uninstall` from any thread before or after requests are served (a request already
running keeps the ``_execute`` it started with).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import tornado.web

from otrace.contexts.record import TraceContext
from otrace.contexts.safe import safe_str
from otrace.holds import Hold
from otrace.log import get_logger
from otrace.requests import HoldRule, RequestRecord
from otrace.runtime import Runtime

log = get_logger("tornado.requests")

# The methods are patched on RequestHandler itself, for the whole process; the runtime whose
# tables they fill is the one given to install() last.
_originals: dict[str, Any] = {}
_installed_for: list[Runtime] = []


def installed() -> bool:
    return bool(_originals)


def install(rt: Runtime) -> None:
    """Track every request of every Tornado application in this process in ``rt``'s tables.
    Idempotent; another runtime takes over from the previous one."""
    if _originals:
        if _installed_for and _installed_for[0] is rt:
            return
        uninstall()
    _installed_for[:] = [rt]
    handler = tornado.web.RequestHandler
    execute = handler._execute
    finish_request = handler.finish
    on_error = handler._handle_request_exception
    _originals.update(_execute=execute, finish=finish_request, _handle_request_exception=on_error)
    table, rules = rt.requests, rt.hold_rules
    start, finish, active = table.start, table.finish, table.active

    # No coroutine of our own around the request's: its start is the call of _execute (the
    # coroutine Tornado then runs as a task), its end the handler's finish().
    @functools.wraps(execute)
    def _execute(self: Any, transforms: Any, *args: Any, **kwargs: Any) -> Any:
        coro = execute(self, transforms, *args, **kwargs)
        rec = start(self, self.request, coro, None)
        if rules.rules:
            _check_holds(rt, self, rec)
        return coro

    # finish's own signature: no argument packing on a path every request takes
    @functools.wraps(finish_request)
    def _finish(self: Any, chunk: Any = None) -> Any:
        rec = active.get(id(self))
        if rec is None:
            return finish_request(self, chunk)
        finish(rec, self._status_code, rec.exception)  # before the response goes out
        result = finish_request(self, chunk)
        rec.status = self._status_code  # finish() may turn 200 into 304
        return result

    @functools.wraps(on_error)
    def _handle_request_exception(self: Any, e: BaseException) -> None:
        rec = active.get(id(self))
        if rec is not None and not isinstance(e, tornado.web.Finish):
            rec.exception = e
        on_error(self, e)

    handler._execute = _execute  # type: ignore[method-assign]
    handler.finish = _finish  # type: ignore[method-assign]
    handler._handle_request_exception = _handle_request_exception  # type: ignore[method-assign]


def uninstall(rt: Runtime | None = None) -> None:
    """Stop tracking new requests (for ``rt``: only if it is the one tracking)."""
    if rt is not None and _installed_for and _installed_for[0] is not rt:
        return
    for name, original in _originals.items():
        setattr(tornado.web.RequestHandler, name, original)
    _originals.clear()
    _installed_for.clear()


def _check_holds(rt: Runtime, handler: Any, rec: RequestRecord) -> None:
    """Shadow the handler's method with a held one if a rule matches.  Loop thread."""
    try:
        rule = rt.hold_rules.match(handler, handler.request)
        if rule is None:
            return
        name = str(handler.request.method).lower()
        method = getattr(handler, name)
    except Exception:
        log.exception("testing hold rules failed")
        return

    @functools.wraps(method)
    async def held(*args: Any, **kwargs: Any) -> Any:
        await _hold(rt, handler, rec, rule, name, args, kwargs)
        result = method(*args, **kwargs)
        if result is not None:
            result = await result
        return result

    setattr(handler, name, held)


async def _hold(
    rt: Runtime,
    handler: Any,
    rec: RequestRecord,
    rule: HoldRule,
    method: str,
    args: tuple,
    kwargs: dict,
) -> Any:
    request = handler.request
    line = f"{request.method} {safe_str(request.uri, 200)}"
    values = {
        "self": handler,
        "handler": handler,
        "request": request,
        "request_id": rec.id,
        "args": args,
        "kwargs": kwargs,
    }
    task = asyncio.current_task()
    trc = {"request": line, "hold_rule": rule.render(), "task": task.get_name() if task else None}
    ctx, hold = rt.recorder.record(
        "holds",
        f"{type(handler).__name__}.{method}",
        f"c{rule.number}",
        values,
        trc,
        say=[lambda c: f"{c.id} {line}"],
    )
    assert isinstance(hold, Hold)
    timer = None
    if rule.timeout is not None:
        timer = hold.loop.call_later(rule.timeout, _time_out, rt, ctx)
    try:
        return await hold
    finally:
        if timer is not None:
            timer.cancel()


def _time_out(rt: Runtime, ctx: TraceContext) -> None:
    if rt.holds.resume(ctx, reason="timeout"):
        rt.announce(f"{ctx.id} resumed: hold timeout")
