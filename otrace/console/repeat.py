"""``repeat`` in the terminal: redraw a command's output on the alternate screen until a key.

The command runs every ``repeat_interval`` seconds; a key press ends it (the key only stops
it: it is not the start of the next command), and so does an announcement (it is printed
after it).  Ctrl-C is a key here, like any other.  The last output is shown again on the
normal screen, where it stays.

Thread safety: runs in the console's thread; :meth:`AltScreenRepeat._wake` from any thread.
"""

from __future__ import annotations

import contextlib
import os
import select
import termios
import threading
from typing import Any

ALT_SCREEN_ON, ALT_SCREEN_OFF, CLEAR_SCREEN = "\x1b[?1049h", "\x1b[?1049l", "\x1b[H\x1b[J"


class AltScreenRepeat:
    """Mixin for :class:`~otrace.console.terminal.TerminalConsole`."""

    _state: threading.RLock
    stopped: bool
    stdin: Any
    stdout: Any

    def _init_repeat(self) -> None:
        self._repeating = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def _close_repeat(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def repeat(self, line: str) -> None:
        """Run ``line`` every repeat_interval on the alternate screen until a key is pressed;
        then show the last output on the normal screen, where it stays."""
        interval = float(self.backend.state.get("repeat_interval", 0.2))  # type: ignore[attr-defined]
        result = self.execute(line)  # type: ignore[attr-defined]
        if interval <= 0 or result.err or result.action:
            self.show(result)  # type: ignore[attr-defined]
            return
        try:
            fd = self.stdin.fileno()
            saved = termios.tcgetattr(fd)
        except (OSError, ValueError, termios.error):
            super().repeat(line)  # type: ignore[misc]
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
            self._write(self.stdout, ALT_SCREEN_ON)  # type: ignore[attr-defined]
            for _ in range(10_000):
                self._write(self.stdout, CLEAR_SCREEN)  # type: ignore[attr-defined]
                self.show(result)  # type: ignore[attr-defined]
                if self.stopped or self._wait_key(fd, interval):
                    break
                result = self.execute(line)  # type: ignore[attr-defined]
                if result.err or result.action:
                    break
            last = result  # leaving the alternate screen wipes it: show this one again
        finally:
            self._write(self.stdout, ALT_SCREEN_OFF)  # type: ignore[attr-defined]
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(fd, termios.TCSANOW, saved)
            with self._state:
                self._repeating = False
                self._drain_now(partial=True)  # type: ignore[attr-defined]
        if last is not None:
            self.show(last)  # type: ignore[attr-defined]

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
