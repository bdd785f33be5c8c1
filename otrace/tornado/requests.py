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

from otrace import holds
from otrace.contexts.record import TraceContext
from otrace.contexts.safe import safe_str
from otrace.contexts.store import STORE
from otrace.log import announce, get_logger
from otrace.requests import HOLD_RULES, REQUESTS, HoldRule, RequestRecord

log = get_logger("tornado.requests")

_originals: dict[str, Any] = {}


def installed() -> bool:
    return bool(_originals)


def install() -> None:
    """Track every request of every Tornado application in this process.  Idempotent."""
    if _originals:
        return
    handler = tornado.web.RequestHandler
    execute = handler._execute
    finish_request = handler.finish
    on_error = handler._handle_request_exception
    _originals.update(_execute=execute, finish=finish_request, _handle_request_exception=on_error)
    start, finish, active = REQUESTS.start, REQUESTS.finish, REQUESTS.active

    # No coroutine of our own around the request's: its start is the call of _execute (the
    # coroutine Tornado then runs as a task), its end the handler's finish().
    @functools.wraps(execute)
    def _execute(self: Any, transforms: Any, *args: Any, **kwargs: Any) -> Any:
        coro = execute(self, transforms, *args, **kwargs)
        rec = start(self, self.request, coro, None)
        if HOLD_RULES.rules:
            _check_holds(self, rec)
        return coro

    @functools.wraps(finish_request)
    def _finish(self: Any, *args: Any, **kwargs: Any) -> Any:
        rec = active.get(id(self))
        if rec is None:
            return finish_request(self, *args, **kwargs)
        finish(rec, self._status_code, rec.exception)  # before the response goes out
        try:
            return finish_request(self, *args, **kwargs)
        finally:
            rec.status = self._status_code  # finish() may turn 200 into 304

    @functools.wraps(on_error)
    def _handle_request_exception(self: Any, e: BaseException) -> None:
        rec = active.get(id(self))
        if rec is not None and not isinstance(e, tornado.web.Finish):
            rec.exception = e
        on_error(self, e)

    handler._execute = _execute  # type: ignore[method-assign]
    handler.finish = _finish  # type: ignore[method-assign]
    handler._handle_request_exception = _handle_request_exception  # type: ignore[method-assign]


def uninstall() -> None:
    """Stop tracking new requests (the ones running finish as they started)."""
    for name, original in _originals.items():
        setattr(tornado.web.RequestHandler, name, original)
    _originals.clear()


def _check_holds(handler: Any, rec: RequestRecord) -> None:
    """Shadow the handler's method with a held one if a rule matches.  Loop thread."""
    try:
        rule = HOLD_RULES.match(handler, handler.request)
        if rule is None:
            return
        name = str(handler.request.method).lower()
        method = getattr(handler, name)
    except Exception:
        log.exception("testing hold rules failed")
        return

    @functools.wraps(method)
    async def held(*args: Any, **kwargs: Any) -> Any:
        await _hold(handler, rec, rule, name, args, kwargs)
        result = method(*args, **kwargs)
        if result is not None:
            result = await result
        return result

    setattr(handler, name, held)


async def _hold(
    handler: Any, rec: RequestRecord, rule: HoldRule, method: str, args: tuple, kwargs: dict
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
    ctx = TraceContext(
        "holds", f"{type(handler).__name__}.{method}", f"c{rule.number}", values, trc
    )
    hold = holds.new_hold(ctx)
    STORE.add(ctx)
    announce(f"{ctx.id} {line}")
    timer = None
    if rule.timeout is not None:
        timer = hold.loop.call_later(rule.timeout, _time_out, ctx)
    try:
        return await hold
    finally:
        if timer is not None:
            timer.cancel()


def _time_out(ctx: TraceContext) -> None:
    if holds.resume(ctx, reason="timeout"):
        announce(f"{ctx.id} resumed: hold timeout")
