"""The terminal console: a prompt_toolkit prompt driving a session in the otrace service.

The same front end serves the program's own terminal and ``otrace attach``.  What it adds
to :class:`~otrace.console.plain.Console`:

* line editing, TAB completion answered by the session, Python highlighting of input
  (:class:`~otrace.console.highlight.ShellLexer`) and of ``view`` output;
* history kept across runs in ``~/.otrace_history`` (``$OTRACE_HISTORY`` names another
  file; an empty value keeps history in memory only);
* announcements, and (for the local console) what the program prints or logs, appear above
  the prompt, which is redrawn with the partly typed line intact (:mod:`.router`);
* the prompt follows the session (e.g. the ``BRK:`` prefix when a break becomes pending);
* Ctrl-C cancels the line (and pending multi-line code), and while a command runs it
  interrupts that command (the terminal does not send SIGINT meanwhile: the program never
  sees it); Ctrl-D and ``quit`` detach the console;
* ``repeat`` on the alternate screen until a key (:mod:`.repeat`); the local console hands the terminal
  to pdb and takes it back (:mod:`.pdb_handover`); password prompts of a locked session
  read without echo and stay out of the history.

Idle costs nothing: one asyncio loop lives for the whole console and runs only while a prompt
is shown; it waits on the terminal's file descriptor with no timers (prompt_toolkit's
terminal-size polling is switched off).

Thread safety: created and run in the console's thread.  :meth:`announce`, :meth:`refresh`
and :meth:`stop` may be called from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import termios
import threading
from collections.abc import Iterable
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app
from prompt_toolkit.completion import CompleteEvent, Completer
from prompt_toolkit.completion import Completion as PTCompletion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import create_input
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.output import create_output

from otrace.console.highlight import ShellLexer, highlight_python
from otrace.console.pdb_handover import SUSPENDED, PdbHandover
from otrace.console.plain import Console
from otrace.console.repeat import AltScreenRepeat
from otrace.console.router import OutputRouter
from otrace.contexts.safe import terminal_text
from otrace.events import DebuggerHandover

HISTORY_ENV = "OTRACE_HISTORY"
DEFAULT_HISTORY = "~/.otrace_history"


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
    """Adapts the session's completion records to prompt_toolkit."""

    def __init__(self, backend: Any):
        self.backend = backend

    def get_completions(self, document: Document, complete_event: CompleteEvent):
        for c in self.backend.complete(document.text_before_cursor):
            yield PTCompletion(
                c.text,
                start_position=c.start,
                display=c.display or None,
                display_meta=c.meta or None,
            )


class TerminalConsole(OutputRouter, PdbHandover, AltScreenRepeat, Console):
    """The interactive console (stdin and stdout are a terminal).

    :param local: the program's runtime when this is the program's own terminal (route the
        program's output above the prompt, hand the terminal to pdb); None in ``otrace attach``.
    """

    def __init__(self, backend, stdin, stdout, stderr, echo_callback=None, local: Any = None):
        super().__init__(backend, stdin, stdout, stderr, echo_callback)
        self.local = local
        self._state = threading.RLock()  # guards the fields below and direct writes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._prompting = False
        self._init_router()
        self._init_handover()
        self._init_repeat()
        self._held: list[str] = []  # announcements that came while pdb had the terminal
        self._typeahead = ""  # keys typed while a command ran: the start of the next line
        try:
            self._color = bool(stdout.isatty())
        except (AttributeError, ValueError):
            self._color = False
        self._input = create_input(stdin)
        self._output = create_output(stdout)
        self.prompt_session: PromptSession[str] = PromptSession(
            message=self._message,
            history=make_history(),
            completer=ShellCompleter(backend),
            lexer=ShellLexer(backend),
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
        self._command_fd = -1

    # -- prompt -------------------------------------------------------------------------
    def _message(self) -> str:
        return terminal_text(self.backend.prompt())

    def _bindings(self) -> KeyBindings:
        kb = KeyBindings()

        @Condition
        def indenting() -> bool:
            buffer = get_app().current_buffer
            return self.backend.pending_code and not buffer.document.text_before_cursor.strip()

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
            if self.backend.ended.is_set():
                self._exit_prompts()
            else:
                app.invalidate()

    def read_line(self, prompt: str) -> str | None:
        while True:
            self._wait_for_terminal()
            default, self._typeahead = self._typeahead, ""
            line = self._prompt(
                self.prompt_session, main=True, default=default, pre_run=self._check_terminal
            )
            if line is not SUSPENDED:
                return line

    def _auto_lock(self) -> None:
        """``auto_lock`` seconds without input: leave the prompt as if 'lock' was typed."""
        app = self.prompt_session.app
        if app.is_running and app.future is not None and not app.future.done():
            app.exit(result="lock")

    def read_secret(self, prompt: str) -> str | None:
        return self._prompt(self._secret_session, message=prompt)

    def can_reread(self) -> bool:
        return True  # Ctrl-D on a terminal: more keys can follow

    def _prompt(self, ps: PromptSession[str], main: bool = False, **kwargs: Any) -> Any:
        """Show a prompt on the console's loop; None at Ctrl-D or after stop().

        ``main`` is the command prompt (not a password prompt): it is not drawn while pdb
        owns the terminal, and with ``auto_lock`` and a password set, ``auto_lock`` idle
        seconds end it with 'lock' (one timer on the console's own loop; nothing polls).
        """
        with self._state:
            if self.stopped or self._loop is None or self.backend.ended.is_set():
                return None
            if main and not self._terminal_free.is_set():
                return SUSPENDED  # pdb has just taken the terminal: draw nothing
            self._prompting = True
            loop = self._loop
        auto_lock = self.backend.auto_lock
        timer = None
        if main and auto_lock > 0:
            timer = loop.call_later(auto_lock, self._auto_lock)
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

    def _on_handover(self, event: DebuggerHandover) -> None:
        self.on_debugger(event.phase)
        if event.phase == "leave":
            with self._state:
                held, self._held = self._held, []
            for text in held:
                self.announce(text)

    # -- output -------------------------------------------------------------------------
    def render(self, text: str, kind: str) -> str:
        if kind == "python" and self._color:
            try:
                return highlight_python(text)
            except Exception:
                return text
        return text

    def announce(self, text: str) -> None:
        """Print an announcement above the prompt (or now, if no prompt is shown); while pdb
        owns the terminal, keep it until pdb lets go.  Any thread (the session's reader)."""
        with self._state:
            if not self._terminal_free.is_set():
                self._held.append(text)  # not in the middle of pdb's own prompt line
                return
            if self._repeating:
                self._wake()  # an announcement ends repeat mode; it prints after it
            self._emit(self.stderr, terminal_text(text) + "\n", whole=True, echo=True)

    # -- running commands ---------------------------------------------------------------
    def width(self) -> int:
        try:
            return self._output.get_size().columns
        except Exception:
            return 0

    def execute(self, line: str):
        """Run ``line``; meanwhile the terminal sends keys, not signals, so Ctrl-C reaches
        only this console's command."""
        with self._command_keys():
            return super().execute(line)

    @contextlib.contextmanager
    def _command_keys(self):
        fd, saved = -1, None
        with contextlib.suppress(OSError, ValueError, AttributeError, termios.error):
            fd = self.stdin.fileno()
            saved = termios.tcgetattr(fd)
            keys = list(saved)
            keys[3] &= ~(termios.ICANON | termios.ECHO | termios.ISIG)
            keys[6] = list(saved[6])
            keys[6][termios.VMIN], keys[6][termios.VTIME] = 1, 0
            termios.tcsetattr(fd, termios.TCSANOW, keys)
        self._command_fd = fd if saved is not None else -1
        try:
            yield
        finally:
            self._command_fd = -1
            if saved is not None:
                with contextlib.suppress(OSError, termios.error):
                    termios.tcsetattr(fd, termios.TCSANOW, saved)

    def poll_interrupt(self) -> bool:
        """Keys typed while a command runs: Ctrl-C interrupts it; printable keys are kept
        for the next prompt."""
        fd = self._command_fd
        if fd < 0 or not self._terminal_free.is_set():
            return False  # pdb reads the terminal now
        try:
            ready, _, _ = select.select([fd], [], [], 0)
            if not ready:
                return False
            data = os.read(fd, 1024).decode("utf-8", "ignore")
        except (OSError, ValueError):
            return False
        if "\x03" in data:
            self._write(self.stderr, "^C\n")
            return True
        self._typeahead += printable_prefix(data)
        return False

    def edit_text(self, text: str, label: str, editor: str = "") -> str:
        """Run the editor with the terminal back in its normal mode."""
        fd = self._command_fd
        saved = None
        if fd >= 0:
            with contextlib.suppress(termios.error, OSError):
                saved = termios.tcgetattr(fd)
                normal = list(saved)
                normal[3] |= termios.ICANON | termios.ECHO | termios.ISIG
                termios.tcsetattr(fd, termios.TCSANOW, normal)
        try:
            return super().edit_text(text, label, editor)
        finally:
            if saved is not None:
                with contextlib.suppress(termios.error, OSError):
                    termios.tcsetattr(fd, termios.TCSANOW, saved)

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> None:
        loop = asyncio.new_event_loop()
        with self._state:
            self._loop = loop
        undo = self._install_proxies() if self.local is not None else None
        if self.local is not None:
            self.local.events.subscribe(DebuggerHandover, self._on_handover)
        try:
            super().run()
        finally:
            if self.local is not None:
                self.local.events.unsubscribe(DebuggerHandover, self._on_handover)
            if undo is not None:
                undo()
            with self._state:
                self._loop = None
                self._drain_now(partial=True)
            loop.close()
            self._close_repeat()

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


def printable_prefix(keys: str) -> str:
    """The typed text worth keeping: printable characters before any control key."""
    out = []
    for ch in keys:
        if not ch.isprintable():
            break
        out.append(ch)
    return "".join(out)
