"""Tornado 6 integration: the event-loop bridge, holds on requests, clean shutdown.

:func:`attach` also turns on request tracking for every ``tornado.web.Application``
(``/osh/requests``, ``hold -c``; see :mod:`.requests`), names the loop whose tasks
``/osh/tasks`` lists, and arms the stall watchdog (``set stall_ms``; see :mod:`.stall`).

A Tornado server runs every request on one thread, so a breakpoint there would stop them
all.  otrace *holds* one request instead: the handler awaits a hold (``await
traceassert(ok, "label", action="hold")`` or ``trace -a hold Handler.method`` on an
``async def``), the server goes on serving, and the operator browses the held frame from
the shell thread and types ``resume``.

Typical main::

    loop = IOLoop.current()
    shell = OShell(globals(), locals(), init_file="app.trc", allow_unsafe=True,
                   new_thread=True, eventloop_callback=loop.add_callback)
    otrace.tornado.attach(shell, loop)     # defaults + stop the loop at shutdown
    shell.loop()
    app.listen(port)
    loop.start()
    shell.shutdown()

Interactive traceback pages: :func:`enable_tracebacks` mounts the page of
:mod:`otrace.web.traceback` in an application running in debug mode and makes its handlers'
uncaught exceptions render it.

Handlers that may be held should inherit :class:`HoldAwareMixin` first, so that a client
disconnecting while its request is held releases the hold (``__trc["released"]`` is then
``"disconnected"``).

Thread rules: :func:`attach` runs on the thread that will run the loop (normally main,
before ``loop.start()``), or anywhere when ``loop`` is given.  :func:`run_on_loop` is for
other threads (the shell's); on the loop's own thread it simply calls the function.
:class:`HoldAwareMixin` methods run on the loop thread, as Tornado calls them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tornado.web
from tornado.ioloop import IOLoop

from otrace import holds
from otrace.log import get_logger
from otrace.runtime import Runtime, default
from otrace.tornado import requests as _requests
from otrace.tornado import stall as _stall

if TYPE_CHECKING:
    from otrace.web.traceback import TracebackServer

log = get_logger("tornado")


def _runtime(shell: Any = None, runtime: Runtime | None = None) -> Runtime:
    if runtime is not None:
        return runtime
    rt = getattr(shell, "runtime", None)
    return rt if isinstance(rt, Runtime) else default()


def attach(
    shell: Any = None,
    loop: IOLoop | None = None,
    *,
    stop_loop: bool = True,
    on_stop: Callable[[], Any] | None = None,
    runtime: Runtime | None = None,
    track_requests: bool = True,
) -> IOLoop:
    """Make ``loop`` (default: ``IOLoop.current()``) the application's loop for otrace.

    * holds are resolved with ``loop.add_callback`` (thread-safe), and
      :func:`run_on_loop` targets this loop;
    * with a ``shell`` whose ``eventloop_callback`` was omitted, it is set to
      ``loop.add_callback``; with ``stop_loop``, the loop stops once the shell shuts down
      (``shutdown``), so ``loop.start()`` returns and the process can exit (``on_stop``: call
      this instead of ``loop.stop``, see :func:`stop_on_shutdown`);
    * with ``track_requests``, every request handler is tracked (``/osh/requests``, ``hold
      -c``) and the loop's tasks are listed in ``/osh/tasks``; ``set stall_ms N`` watches
      this loop for stalls.
    * a shell made with ``listen`` (or ``OTRACE_LISTEN``) starts listening for consoles.

    The loop is kept on the runtime (``runtime``, else the shell's, else the default one).
    Returns the loop.  Call before ``loop.start()`` from the thread that will run it, or from
    any thread with an explicit ``loop``.
    """
    rt = _runtime(shell, runtime)
    if loop is None:
        loop = IOLoop.current()
    rt.loop = loop
    rt.loop_thread = None
    loop.add_callback(_note_loop_thread, loop, rt)
    rt.holds.set_eventloop_callback(_bridge(loop))
    aio = getattr(loop, "asyncio_loop", None)
    rt.requests.loop = aio
    if track_requests:
        _requests.install(rt)
    _stall.configure(rt, aio)
    if shell is not None:
        if getattr(shell, "eventloop_callback", None) is None:
            shell.eventloop_callback = loop.add_callback
        if stop_loop:
            stop_on_shutdown(shell, loop, on_stop=on_stop)
        start_service = getattr(shell, "start_service", None)
        if start_service is not None:
            start_service()  # consoles can attach as soon as the loop runs (if it listens)
    return loop


def _bridge(loop: IOLoop) -> Callable[[Callable[[], Any]], Any]:
    """``loop.add_callback`` for holds of ``loop``; a hold made on another asyncio loop
    (a second server in the same process) is resolved on its own loop instead."""

    def callback(fn: Callable[[], Any]) -> None:
        own = getattr(getattr(fn, "__self__", None), "loop", None)
        if own is not None and own is not getattr(loop, "asyncio_loop", own):
            own.call_soon_threadsafe(fn)
        else:
            loop.add_callback(fn)

    return callback


def detach(runtime: Runtime | None = None) -> None:
    """Forget the attached loop; holds go back to their own loop's ``call_soon_threadsafe``."""
    rt = _runtime(None, runtime)
    rt.loop = None
    rt.loop_thread = None
    rt.holds.set_eventloop_callback(None)
    _requests.uninstall(rt)
    _stall.configure(rt, None)
    rt.requests.loop = None


def _note_loop_thread(loop: IOLoop, rt: Runtime) -> None:
    if loop is rt.loop:
        rt.loop_thread = threading.get_ident()


def attached_loop(runtime: Runtime | None = None) -> IOLoop | None:
    """The loop given to :func:`attach`, if any.  Any thread."""
    return _runtime(None, runtime).loop


def stop_on_shutdown(
    shell: Any,
    loop: IOLoop | None = None,
    on_stop: Callable[[], Any] | None = None,
) -> None:
    """Stop ``loop`` when ``shell`` shuts down (which has already released every hold).

    ``on_stop`` replaces ``loop.stop`` -- e.g. ``stopped.set`` of an :class:`asyncio.Event`
    that ``main`` awaits under ``asyncio.run``.  The shell calls back at shutdown (from its
    own thread); the stop is then scheduled on the loop with ``add_callback``, so nothing
    polls while the program runs.  Any thread.
    """
    target = loop or IOLoop.current()

    def stop() -> None:
        # one more turn of the loop: the released handlers finish their responses first
        target.add_callback(on_stop or target.stop)

    shell.on_shutdown.append(lambda: target.add_callback(stop))


def run_on_loop(
    fn: Callable[..., Any], *args: Any, loop: IOLoop | None = None, timeout: float | None = 10.0
) -> Any:
    """Run ``fn(*args)`` on the application's loop and return its result (awaited if a
    coroutine or future is returned).

    For threads other than the loop's (the shell's): the call goes through the loop's
    thread-safe ``add_callback`` and this thread waits at most ``timeout`` seconds
    (:class:`TimeoutError` after that; ``None`` waits forever).  On the loop's own thread
    ``fn`` is called directly (an awaitable result is then returned as is, not waited on).
    Exceptions raised by ``fn`` are re-raised here.
    """
    target = loop or default().loop or _current_or_none()
    if target is None:
        raise RuntimeError("no Tornado loop: call otrace.tornado.attach(shell, loop) first")
    if _on_loop_thread(target):
        return fn(*args)
    done: concurrent.futures.Future = concurrent.futures.Future()

    async def call() -> None:
        if not done.set_running_or_notify_cancel():
            return
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            done.set_exception(exc)
        else:
            done.set_result(result)

    target.add_callback(call)
    try:
        return done.result(timeout)
    except concurrent.futures.TimeoutError:
        done.cancel()
        raise TimeoutError(f"the event loop did not run {fn!r} within {timeout}s") from None


def _current_or_none() -> IOLoop | None:
    return IOLoop.current(instance=False)


def _on_loop_thread(loop: IOLoop) -> bool:
    aio = getattr(loop, "asyncio_loop", None)
    return aio is not None and holds.running_loop() is aio


def _handler_holds(handler: Any) -> list[Any]:
    return [ctx for ctx in holds.held_by(handler) if ctx.kind == "holds"]


class HoldAwareMixin:
    """RequestHandler mixin: a client that disconnects releases its request's holds.

    Put it first among the bases (``class H(HoldAwareMixin, RequestHandler)``).  The released
    context records ``__trc["released"] = "disconnected"``; the handler resumes on the loop
    and ``self.disconnected`` is then True, so it can skip writing a response (Tornado
    discards writes to a closed connection anyway).
    """

    disconnected = False

    def on_connection_close(self) -> None:
        self.disconnected = True
        for ctx in _handler_holds(self):
            if holds.resume(ctx, reason="disconnected"):
                log.info("%s released: client disconnected", ctx.id)
        super().on_connection_close()  # type: ignore[misc]

    def held(self) -> list[Any]:
        """Contexts of this handler's pending holds (any thread)."""
        return _handler_holds(self)


def hold_wrapper(hold: Any) -> Any:
    """Compatibility for ``OShell(hold_wrapper=...)``: holds are awaitables already.

    Returns an :class:`asyncio.Future` a Tornado coroutine can await or ``yield``.
    """
    return asyncio.ensure_future(hold)


# -- interactive traceback pages ----------------------------------------------------------------
def enable_tracebacks(
    app: tornado.web.Application, *, runtime: Runtime | None = None, **options: Any
) -> TracebackServer | None:
    """Serve interactive traceback pages from ``app`` if it runs in debug mode.

    Adds the page's routes (ahead of the application's own) and makes uncaught handler
    exceptions render the page.  Returns the :class:`~otrace.web.traceback.TracebackServer`
    (``options`` go to it), or None -- changing nothing -- when ``app.settings["debug"]`` is
    false.  The server becomes ``runtime``'s (default: the default runtime's) traceback page.
    Call on the event-loop thread before serving.
    """
    from otrace.web.traceback import TracebackServer  # the page: only when asked for

    if not app.settings.get("debug"):
        return None
    existing = getattr(app, "otrace_tracebacks", None)
    if isinstance(existing, TracebackServer):
        return existing
    server = TracebackServer(**options)
    app.otrace_tracebacks = server  # type: ignore[attr-defined]
    router = app.wildcard_router
    rules = [router.process_rule(tornado.web.url(*r)) for r in server.routes()]
    router.rules[0:0] = rules
    original = app.get_handler_delegate

    def get_handler_delegate(
        request: Any,
        target_class: Any,
        target_kwargs: Any = None,
        path_args: Any = None,
        path_kwargs: Any = None,
    ) -> Any:
        return original(
            request, server.debug_class(target_class), target_kwargs, path_args, path_kwargs
        )

    app.get_handler_delegate = get_handler_delegate  # type: ignore[method-assign]
    (runtime if runtime is not None else default()).traceback_server = server
    return server
