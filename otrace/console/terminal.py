"""The terminal console: a prompt_toolkit prompt in the shell thread.

What it adds to :class:`~otrace.console.plain.Console`:

* line editing, TAB completion (:mod:`otrace.shell.completion`), Python highlighting of
  input (:class:`~otrace.console.highlight.ShellLexer`) and of ``view`` output;
* history kept across runs in ``~/.otrace_history`` (``$OTRACE_HISTORY`` names another
  file; an empty value keeps history in memory only);
* announcements (trace events) and anything the program writes to ``sys.stdout`` /
  ``sys.stderr`` or logs to a stream while the prompt is shown are printed above the prompt,
  which is then redrawn with the partly typed line intact.  For this, while the console runs,
  ``sys.stdout``/``sys.stderr`` are small proxies, and logging handlers that wrote to the
  real streams write to the proxies (all restored when the console ends);
* the prompt names where you are and is redrawn by :meth:`TerminalConsole.refresh` (e.g. the
  ``BRK:`` prefix when a break becomes pending);
* Ctrl-C cancels the line (and pending multi-line code); Ctrl-D ends the shell;
* ``repeat`` redraws on the alternate screen until a key is pressed (the key only stops it,
  and a trace event ends it too), then shows its last output on the normal screen; ``lock``
  reads passwords without echo (and keeps them out of the history).

Idle costs nothing: one asyncio loop lives for the whole console and runs only while a prompt
is shown; it waits on the terminal's file descriptor with no timers (prompt_toolkit's
terminal-size polling, which wakes every 0.5 s, is switched off; a window resize is picked up
at the next key press, or at once when the console runs in the main thread).

Thread safety: created and run in the shell thread.  :meth:`announce`, :meth:`refresh` and
:meth:`stop` may be called from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import select
import sys
import termios
import threading
from collections.abc import Callable, Iterable
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app, run_in_terminal
from prompt_toolkit.completion import CompleteEvent, Completer
from prompt_toolkit.completion import Completion as PTCompletion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import create_input
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.output import create_output

from otrace.console.highlight import ShellLexer, highlight_python
from otrace.console.plain import Console
from otrace.contexts.safe import terminal_text
from otrace.events import ContextRecorded, ContextRemoved, DebuggerHandover
from otrace.shell.completion import complete

_SUSPENDED = object()  # a prompt left because a debugger took the terminal
HISTORY_ENV = "OTRACE_HISTORY"
DEFAULT_HISTORY = "~/.otrace_history"
ALT_SCREEN_ON, ALT_SCREEN_OFF, CLEAR_SCREEN = "\x1b[?1049h", "\x1b[?1049l", "\x1b[H\x1b[J"


def history_path() -> str | None:
    """The history file: ``$OTRACE_HISTORY`` if set (empty: none), else ~/.otrace_history."""
    path = os.environ.get(HISTORY_ENV)
    if path is None:
        path = DEFAULT_HISTORY
    return os.path.expanduser(path) if path else None


class _SafeFileHistory(FileHistory):
    """File history that shrugs off an unreadable or unwritable file."""

    def load_history_strings(self) -> Iterable[str]:
        try:
            return list(super().load_history_strings())
        except OSError:
            return []

    def store_string(self, string: str) -> None:
        with contextlib.suppress(OSError):
            super().store_string(string)


def make_history() -> History:
    path = history_path()
    return _SafeFileHistory(path) if path else InMemoryHistory()


class ShellCompleter(Completer):
    """Adapts :func:`otrace.shell.completion.complete` to prompt_toolkit."""

    def __init__(self, session):
        self.session = session

    def get_completions(self, document: Document, complete_event: CompleteEvent):
        for c in complete(self.session, document.text_before_cursor):
            yield PTCompletion(
                c.text,
                start_position=c.start,
                display=c.display or None,
                display_meta=c.meta or None,
            )


class TerminalConsole(Console):
    """The interactive console (stdin and stdout are a terminal)."""

    def __init__(self, shell, stdin, stdout, stderr):
        super().__init__(shell, stdin, stdout, stderr)
        session = shell.session
        self._state = threading.RLock()  # guards the fields below and direct writes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._prompting = False
        self._repeating = False
        self._queue: list[tuple[Any, str, bool]] = []
        self._partial: dict[int, str] = {}  # id(stream) -> unfinished line
        self._real_streams: tuple[Any, ...] = ()
        self._drain_scheduled = False
        self._typeahead = ""
        self._terminal_free = threading.Event()  # cleared while pdb owns the terminal
        self._terminal_free.set()
        self._out_of_prompt = threading.Event()  # set while no prompt is on the screen
        self._out_of_prompt.set()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        try:
            self._color = bool(stdout.isatty())
        except (AttributeError, ValueError):
            self._color = False
        self._input = create_input(stdin)
        self._output = create_output(stdout)
        self.prompt_session: PromptSession[str] = PromptSession(
            message=self._message,
            history=make_history(),
            completer=ShellCompleter(session),
            lexer=ShellLexer(session),
            complete_while_typing=False,
            key_bindings=self._bindings(),
            input=self._input,
            output=self._output,
            refresh_interval=0,
            mouse_support=False,
        )
        self._secret_session: PromptSession[str] = PromptSession(
            history=InMemoryHistory(), input=self._input, output=self._output, is_password=True
        )
        for ps in (self.prompt_session, self._secret_session):
            ps.app.terminal_size_polling_interval = None  # no 0.5 s wakeups while idle

    # -- prompt -------------------------------------------------------------------------
    def _message(self) -> str:
        try:
            return terminal_text(self.shell.session.prompt())
        except Exception:
            return "> "

    def _bindings(self) -> KeyBindings:
        kb = KeyBindings()

        @Condition
        def indenting() -> bool:
            buffer = get_app().current_buffer
            return (
                self.shell.session.pending_code and not buffer.document.text_before_cursor.strip()
            )

        @kb.add("tab", filter=indenting)
        def _(event) -> None:
            event.current_buffer.insert_text("    ")

        return kb

    def refresh(self) -> None:
        """Redraw the prompt (its text may have changed, e.g. ``BRK:``).  Any thread."""
        with self._state:
            loop = self._loop if self._prompting else None
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._invalidate)

    def _invalidate(self) -> None:
        app = self.prompt_session.app
        if app.is_running:
            app.invalidate()

    def read_line(self, prompt: str) -> str | None:
        while True:
            self._wait_for_terminal()
            default, self._typeahead = self._typeahead, ""
            line = self._prompt(
                self.prompt_session, main=True, default=default, pre_run=self._check_terminal
            )
            if line is not _SUSPENDED:
                return line

    # -- handing the terminal to pdb -------------------------------------------------------
    def on_debugger(self, event: str) -> None:
        """pdb starts ("enter") or lets go ("leave") in a traced thread.  Any thread."""
        if event == "enter":
            with self._state:
                self._terminal_free.clear()
                loop = self._loop if self._prompting else None
            if loop is not None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._suspend_prompt)
                # let the prompt leave the screen before pdb writes to it (bounded wait)
                self._out_of_prompt.wait(2.0)
            self._write(
                self.stderr, "***otrace shell suspended while pdb runs (continue to return)\n"
            )
        else:
            self._terminal_free.set()

    def _check_terminal(self) -> None:
        # pdb may have taken the terminal while this prompt was starting
        if not self._terminal_free.is_set():
            self._suspend_prompt()

    def _suspend_prompt(self) -> None:
        app = self.prompt_session.app
        if app.is_running and app.future is not None and not app.future.done():
            app.exit(result=_SUSPENDED)  # type: ignore[call-overload]

    def _wait_for_terminal(self) -> None:
        # the 0.5 s wake-ups only happen while pdb runs, to notice stop()
        while not self._terminal_free.wait(0.5) and not self.stopped:
            pass

    def _on_handover(self, event: DebuggerHandover) -> None:
        self.on_debugger(event.phase)

    def _on_context_event(self, event: ContextRecorded | ContextRemoved) -> None:
        if event.ctx.kind == "breaks":  # BRK: appears or goes away in the prompt
            self.refresh()

    def _auto_lock(self) -> None:
        """``auto_lock`` seconds without input: leave the prompt as if 'lock' was typed."""
        app = self.prompt_session.app
        if app.is_running and app.future is not None and not app.future.done():
            app.exit(result="lock")

    def read_secret(self, prompt: str) -> str | None:
        try:
            return self._prompt(self._secret_session, message=prompt)
        except KeyboardInterrupt:
            return None

    def _prompt(self, ps: PromptSession[str], main: bool = False, **kwargs: Any) -> str | None:
        """Show a prompt on the console's loop; None at Ctrl-D or after stop().

        ``main`` is the command prompt (not a password prompt): it is not drawn while pdb
        owns the terminal, and with ``auto_lock`` and a password set, ``auto_lock`` idle
        seconds end it with 'lock' (one timer on the console's own loop; nothing polls).
        """
        with self._state:
            if self.stopped or self._loop is None:
                return None
            if main and not self._terminal_free.is_set():
                return _SUSPENDED  # type: ignore[return-value]  # pdb has the terminal: draw nothing
            self._prompting = True
            loop = self._loop
        params = self.shell.session.params
        timer = None
        if main and params.auto_lock > 0 and params.password:
            timer = loop.call_later(params.auto_lock, self._auto_lock)
        self._out_of_prompt.clear()
        try:
            return loop.run_until_complete(ps.prompt_async(**kwargs))
        except EOFError:
            return None
        finally:
            self._out_of_prompt.set()
            if timer is not None:
                timer.cancel()
            with self._state:
                self._prompting = False
                self._drain_now(partial=True)

    # -- output -------------------------------------------------------------------------
    def render(self, text: str, kind: str) -> str:
        if kind == "python" and self._color:
            try:
                return highlight_python(text)
            except Exception:
                return text
        return text

    def announce(self, text: str) -> None:
        """Print a trace event above the prompt (or now, if no prompt is shown).  Any thread."""
        with self._state:
            if self._repeating:
                self._wake()  # a trace event ends repeat mode; it prints after it
            self._emit(self.stderr, terminal_text(text) + "\n", whole=True, echo=True)

    def _emit(self, stream: Any, text: str, whole: bool = False, echo: bool = False) -> None:
        """Write ``text`` to ``stream`` now, or above the prompt when one is shown.

        While a prompt (or repeat) is shown, complete lines are queued and printed by the
        prompt's loop through ``run_in_terminal``; a partial line waits for its newline.
        ``echo``: also pass it to the shell's echo_callback (our own output, not the program's).
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
            for stream in (self.stdout, self.stderr, *self._real_streams):
                rest = self._partial.pop(id(stream), "")
                if rest:
                    self._put(stream, rest, False)

    def _put(self, stream: Any, text: str, echo: bool) -> None:
        if echo:
            self._write(stream, text)
            return
        with contextlib.suppress(OSError, ValueError):
            stream.write(text)
            stream.flush()

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> None:
        loop = asyncio.new_event_loop()
        with self._state:
            self._loop = loop
        real_out, real_err = sys.stdout, sys.stderr
        self._real_streams = (real_out, real_err)
        proxy_out, proxy_err = _PromptSafeStream(self, real_out), _PromptSafeStream(self, real_err)
        sys.stdout, sys.stderr = proxy_out, proxy_err
        redirected = _redirect_log_streams({real_out: proxy_out, real_err: proxy_err})
        bus = self.shell.session.runtime.events
        subscriptions: list[tuple[type, Callable[[Any], None]]] = [
            (DebuggerHandover, self._on_handover),
            (ContextRecorded, self._on_context_event),
            (ContextRemoved, self._on_context_event),
        ]
        for event_type, fn in subscriptions:
            bus.subscribe(event_type, fn)
        try:
            super().run()
        finally:
            for event_type, fn in subscriptions:
                bus.unsubscribe(event_type, fn)
            for handler, stream in redirected:
                with contextlib.suppress(Exception):
                    handler.setStream(stream)
            if sys.stdout is proxy_out:
                sys.stdout = real_out
            if sys.stderr is proxy_err:
                sys.stderr = real_err
            with self._state:
                self._loop = None
                self._drain_now(partial=True)
            loop.close()
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake_r = self._wake_w = -1

    def handle(self, line: str) -> bool:
        with contextlib.suppress(Exception):
            self.shell.session.width = self._output.get_size().columns
        return super().handle(line)

    def lock(self) -> bool:
        unlocked = super().lock()
        if not unlocked:
            self._write(self.stderr, "Shutting down...\n")
        return unlocked

    def stop(self) -> None:
        """End the console: close the prompt, end a repeat.  Any thread."""
        with self._state:
            self.stopped = True
            loop = self._loop if self._prompting else None
            self._wake()
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._exit_prompts)

    def _exit_prompts(self) -> None:
        for ps in (self.prompt_session, self._secret_session):
            app = ps.app
            if app.is_running and app.future is not None and not app.future.done():
                app.exit(exception=EOFError())

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    # -- repeat -------------------------------------------------------------------------
    def repeat(self, line: str) -> None:
        """Run ``line`` every repeat_interval on the alternate screen until a key is pressed;
        then show the last output on the normal screen, where it stays."""
        session = self.shell.session
        params = session.params
        result = session.execute(line)
        if params.repeat_interval <= 0 or result.err or result.action:
            self.show(result)
            return
        try:
            fd = self.stdin.fileno()
            saved = termios.tcgetattr(fd)
        except (OSError, ValueError, termios.error):
            super().repeat(line)
            return
        keys = list(saved)
        keys[3] &= ~(termios.ICANON | termios.ECHO | termios.ISIG)  # Ctrl-C is a key here
        keys[6] = list(saved[6])
        keys[6][termios.VMIN], keys[6][termios.VTIME] = 1, 0
        last = None
        with self._state:
            self._repeating = True
            self._clear_wakeups()
        try:
            termios.tcsetattr(fd, termios.TCSANOW, keys)
            self._write(self.stdout, ALT_SCREEN_ON)
            for _ in range(10_000):
                self._write(self.stdout, CLEAR_SCREEN)
                self.show(result)
                if self.stopped or self._wait_key(fd, params.repeat_interval):
                    break
                result = session.execute(line)
                if result.err or result.action:
                    break
            last = result  # leaving the alternate screen wipes it: show this one again
        finally:
            self._write(self.stdout, ALT_SCREEN_OFF)
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(fd, termios.TCSANOW, saved)
            with self._state:
                self._repeating = False
                self._drain_now(partial=True)
        if last is not None:
            self.show(last)

    def _clear_wakeups(self) -> None:
        with contextlib.suppress(OSError):
            os.set_blocking(self._wake_r, False)
            while os.read(self._wake_r, 512):
                pass
        with contextlib.suppress(OSError):
            os.set_blocking(self._wake_r, True)

    def _wait_key(self, fd: int, timeout: float) -> bool:
        """Wait up to ``timeout``; True when a key came (kept as typeahead) or we were woken."""
        try:
            ready, _, _ = select.select([fd, self._wake_r], [], [], timeout)
        except (OSError, ValueError):
            return True
        if fd in ready:
            with contextlib.suppress(OSError):
                os.read(fd, 1024)  # the key only stops repeat: it is not the next command
            return True
        return bool(ready)


class _PromptSafeStream(io.TextIOBase):
    """What ``sys.stdout``/``sys.stderr`` are while the console runs: writes go to the real
    stream, or above the prompt while one is shown (from any thread)."""

    def __init__(self, console: TerminalConsole, stream: Any):
        self._console = console
        self._stream = stream

    def write(self, text: str) -> int:
        if text:
            self._console._emit(self._stream, text)
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


def _redirect_log_streams(targets: dict[Any, Any]) -> list[tuple[logging.StreamHandler, Any]]:
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
