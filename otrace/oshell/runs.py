"""Run requests (``OShell.loop(wait_to_run=True)``): functions the ``run`` command hands to
the thread that called ``loop``, run there one at a time until shutdown.

Thread rules: :meth:`RunRequests.request` from a session's worker, :meth:`~RunRequests.serve`
on the thread that called ``loop``, :meth:`~RunRequests.stop` from any thread.
"""

from __future__ import annotations

import inspect
import queue
from collections.abc import Callable
from typing import Any

from otrace.errors import OTraceError
from otrace.runtime import Runtime
from otrace.shell.evaluate import format_user_traceback

_STOP = object()


class RunRequests:
    """The queue of requested runs; one runs at a time, its end announced."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._runs: queue.Queue = queue.Queue()
        self._running_task = False

    def request(self, func: Callable[..., Any], args: list[str]) -> None:
        """Queue ``func`` (the session's ``runner``); refused while a run is in progress."""
        if self._running_task:
            raise OTraceError("Already running task; 'interrupt' it or wait for it to complete")
        self._running_task = True
        self._runs.put((func, args))

    def serve(self) -> None:
        """Run what is requested, until :meth:`stop`."""
        while True:
            item = self._runs.get()
            if item is _STOP:
                return
            func, args = item
            try:
                if args or _wants_list(func):
                    func(args)
                else:
                    func()
                self.runtime.announce("Run completed")
            except BaseException as exc:  # noqa: B036 - report anything, keep serving
                self.runtime.announce("Error in completed run\n" + format_user_traceback(exc))
            finally:
                self._running_task = False

    def stop(self) -> None:
        """End :meth:`serve` after the run in progress, if any."""
        self._runs.put(_STOP)


def _wants_list(func: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return True
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )
