"""Output routing for the terminal console: text printed above the prompt, from any thread.

While a prompt (or ``repeat``) is shown, complete lines are queued and printed by the
prompt's loop through ``run_in_terminal``, then the prompt is redrawn with the partly typed
line intact; a partial line waits for its newline.  With no prompt shown, text goes straight
out.  Announcements arrive on the session's reader thread (never on a program thread: the
service queues them); what the program itself writes to ``sys.stdout``/``sys.stderr`` or
logs to a stream arrives on the program's threads through :class:`PromptSafeStream` proxies
installed while the local console runs -- exactly where it would have been written anyway.

Thread safety: :meth:`OutputRouter._emit` from any thread; the drain runs on the console's
prompt loop, or in the console's thread when the prompt ends.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
from typing import Any

from prompt_toolkit.application import run_in_terminal


class OutputRouter:
    """Mixin for :class:`~otrace.console.terminal.TerminalConsole`: routes text above the
    prompt.  Expects ``_state`` (an RLock), ``_loop``, ``_prompting``, ``_repeating`` and
    ``_terminal_free`` from the console."""

    _state: threading.RLock
    _loop: Any
    _prompting: bool
    _repeating: bool
    _terminal_free: threading.Event

    def _init_router(self) -> None:
        self._queue: list[tuple[Any, str, bool]] = []
        self._partial: dict[int, str] = {}  # id(stream) -> unfinished line
        self._real_streams: tuple[Any, ...] = ()
        self._drain_scheduled = False

    def _emit(self, stream: Any, text: str, whole: bool = False, echo: bool = False) -> None:
        """Write ``text`` to ``stream`` now, or above the prompt when one is shown.

        ``echo``: also pass it to the echo callback (our own output, not the program's).
        """
        with self._state:
            # while pdb owns the terminal (no prompt shown) text goes straight out, in order
            direct = not self._terminal_free.is_set() and not self._prompting
            if direct or not (self._prompting or (whole and self._repeating)):
                self._put(stream, self._partial.pop(id(stream), "") + text, echo)
                return
            if not whole:
                text = self._partial.pop(id(stream), "") + text
                text, newline, rest = text.rpartition("\n")
                if rest:
                    self._partial[id(stream)] = rest
                if not newline:
                    return
                text += newline
            self._queue.append((stream, text, echo))
            if self._prompting and not self._drain_scheduled and self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._start_drain)
                    self._drain_scheduled = True
                except RuntimeError:
                    pass  # loop closed: the prompt's end drains the queue

    def _start_drain(self) -> None:
        """In the loop: print queued text above the prompt."""
        run_in_terminal(self._drain_in_terminal, in_executor=False)

    def _drain_in_terminal(self) -> None:
        with self._state:
            self._drain_now()

    def _drain_now(self, partial: bool = False) -> None:
        """Write queued text (caller holds ``_state``); with ``partial`` also unfinished lines."""
        items, self._queue = self._queue, []
        self._drain_scheduled = False
        for stream, text, echo in items:
            self._put(stream, text, echo)
        if partial:
            for stream in (self.stdout, self.stderr, *self._real_streams):  # type: ignore[attr-defined]
                rest = self._partial.pop(id(stream), "")
                if rest:
                    self._put(stream, rest, False)

    def _put(self, stream: Any, text: str, echo: bool) -> None:
        if echo:
            self._write(stream, text)  # type: ignore[attr-defined]
            return
        with contextlib.suppress(OSError, ValueError):
            stream.write(text)
            stream.flush()

    def _install_proxies(self) -> Any:
        """Route the program's sys.stdout/stderr and stream log handlers above the prompt;
        returns an undo function."""
        real_out, real_err = sys.stdout, sys.stderr
        self._real_streams = (real_out, real_err)
        proxy_out, proxy_err = PromptSafeStream(self, real_out), PromptSafeStream(self, real_err)
        sys.stdout, sys.stderr = proxy_out, proxy_err
        redirected = redirect_log_streams({real_out: proxy_out, real_err: proxy_err})

        def undo() -> None:
            for handler, stream in redirected:
                with contextlib.suppress(Exception):
                    handler.setStream(stream)
            if sys.stdout is proxy_out:
                sys.stdout = real_out
            if sys.stderr is proxy_err:
                sys.stderr = real_err

        return undo


class PromptSafeStream(io.TextIOBase):
    """What ``sys.stdout``/``sys.stderr`` are while the console runs: writes go to the real
    stream, or above the prompt while one is shown (from any thread)."""

    def __init__(self, router: OutputRouter, stream: Any):
        self._router = router
        self._stream = stream

    def write(self, text: str) -> int:
        if text:
            self._router._emit(self._stream, text)
        return len(text)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def buffer(self) -> Any:
        """The real stream's binary buffer (bytes written there bypass the prompt)."""
        return self._stream.buffer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "errors", None)


def redirect_log_streams(targets: dict[Any, Any]) -> list[tuple[logging.StreamHandler, Any]]:
    """Point logging handlers that write to the real stdout/stderr at ``targets[stream]``,
    so log lines print above the prompt too; returns what to restore."""
    changed: list[tuple[logging.StreamHandler, Any]] = []
    loggers: list[Any] = [logging.getLogger()]
    loggers.extend(list(logging.Logger.manager.loggerDict.values()))
    for lg in loggers:
        for handler in list(getattr(lg, "handlers", ())):
            if not isinstance(handler, logging.StreamHandler) or isinstance(
                handler, logging.FileHandler
            ):
                continue
            for real, proxy in targets.items():
                if handler.stream is real:
                    old = handler.setStream(proxy)
                    if old is not None:
                        changed.append((handler, old))
                    break
    return changed
