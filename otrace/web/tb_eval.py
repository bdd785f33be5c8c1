"""Evaluation on the traceback page: typed code run in a frame's namespace.

:func:`evaluate` runs typed code with the session's locals and the globals of the frame's
module.  Its standard output is captured for that evaluation only: ``sys.stdout`` is routed
once, for good, through a proxy that writes to the evaluating thread's buffer (a context
variable) and passes every other write through unchanged.

Thread safety: :func:`evaluate` runs in worker threads.
"""

from __future__ import annotations

import ast
import inspect
import io
import sys
import threading
import traceback
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from otrace.contexts.safe import safe_repr
from otrace.holds import AwaitError, run_coroutine
from otrace.shell.evaluate import run_async
from otrace.web.tb_frames import MAX_VALUE, FrameView

MAX_OUTPUT = 200_000


# -- evaluation ----------------------------------------------------------------------------
_CAPTURE: ContextVar[io.StringIO | None] = ContextVar("otrace_tb_capture", default=None)
# sys.stdout is process-wide, so is the lock that installs the routing stream on it.
_route_lock = threading.Lock()


class RoutedStream:
    """A ``sys.stdout`` stand-in: writes go to the evaluating thread's buffer, if any.

    Every other write, and every other attribute, goes to the stream it wraps.
    """

    def __init__(self, target: Any) -> None:
        self._target = target

    def write(self, text: str) -> int:
        buf = _CAPTURE.get()
        if buf is not None:
            return buf.write(text)
        return self._target.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _CAPTURE.get() is None:
            self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def route_stdout() -> None:
    """Make sure ``sys.stdout`` is a :class:`RoutedStream` (once; again if replaced since)."""
    with _route_lock:
        if not isinstance(sys.stdout, RoutedStream):
            sys.stdout = RoutedStream(sys.stdout)


@dataclass
class EvalResult:
    """What one evaluation printed, the repr of its value (expressions) and its error."""

    output: str = ""
    value: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"output": self.output, "value": self.value, "error": self.error}


def _bounded(text: str, limit: int) -> str:
    return (
        text
        if len(text) <= limit
        else text[:limit] + f"\n... ({len(text) - limit} more characters)"
    )


def compile_input(code: str, filename: str) -> tuple[Any, Any]:
    """Compile typed code as (statements or None, final expression or None).

    A trailing expression is evaluated separately so its value can be shown, as an
    interactive prompt does.
    """
    tree = ast.parse(code, filename, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)  # type: ignore[attr-defined]
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT  # only code that awaits becomes a coroutine
    body = compile(tree, filename, "exec", flags=flags) if tree.body else None
    expr = compile(last, filename, "eval", flags=flags) if last is not None else None
    return body, expr


def _awaits(*codes: Any) -> bool:
    return any(c is not None and c.co_flags & inspect.CO_COROUTINE for c in codes)


def evaluate(
    code: str, frame: FrameView, loop: Any = None, await_timeout: float = 10.0
) -> EvalResult:
    """Run ``code`` in ``frame``'s namespace; never raises.  Called in a worker thread.

    Code that uses ``await`` runs as a task on ``loop`` (the program's, for a live page),
    bounded by ``await_timeout`` seconds; without a loop it is refused.
    """
    route_stdout()
    buf = io.StringIO()
    token = _CAPTURE.set(buf)
    result = EvalResult()
    filename = f"<frame {frame.index}: {frame.funcname}>"
    try:
        body, expr = compile_input(code, filename)
        value = None
        if _awaits(body, expr):
            if loop is None:
                raise AwaitError(
                    "await works on live pages only (nothing runs this program's loop)"
                )
            coro = run_async(body, expr, frame.globals, frame.locals)
            value = run_coroutine(coro, await_timeout, loop)
        else:
            if body is not None:
                exec(body, frame.globals, frame.locals)
            if expr is not None:
                value = eval(expr, frame.globals, frame.locals)
        if expr is not None and value is not None:
            try:
                result.value = _bounded(repr(value), MAX_VALUE)
            except Exception as exc:
                result.value = safe_repr(value)
                result.error = f"repr failed: {safe_repr(exc)}"
            frame.locals["_"] = value
    except AwaitError as exc:
        result.error = str(exc)
    except SyntaxError as exc:
        result.error = "".join(traceback.format_exception_only(type(exc), exc))
    except BaseException as exc:  # the typed code's error is the answer, even SystemExit
        tb = exc.__traceback__
        result.error = "".join(
            traceback.format_exception(type(exc), exc, tb.tb_next if tb else None)
        )
    finally:
        _CAPTURE.reset(token)
    result.output = _bounded(buf.getvalue(), MAX_OUTPUT)
    return result
