"""``otrace.install``: put otrace into a program with one call, now or when a signal comes.

::

    import otrace
    otrace.install(activate_on="SIGUSR1")   # costs nothing until `kill -USR1 <pid>`

With ``activate_on`` (or ``$OTRACE_ACTIVATE``, e.g. ``SIGUSR1``) nothing happens -- no
thread, no socket -- until the signal arrives; then a shell on the program's ``__main__``
globals is created and its service listens, so ``otrace attach PID`` works.  Without it,
that happens at once.  The program's own terminal is left alone: consoles attach.

Thread safety: call :func:`install` from the main thread (signal handlers can only be set
there); activation runs on a thread of its own.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

from otrace.errors import OTraceError
from otrace.log import get_logger

ACTIVATE_ENV = "OTRACE_ACTIVATE"
log = get_logger("activation")


class Installation:
    """What :func:`install` did: ``shell`` is the OShell once activated (else None)."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.kwargs = kwargs
        self.shell: Any = None
        self.activated = threading.Event()
        self._lock = threading.Lock()
        self._started = False

    def activate(self) -> None:
        """Create the shell and start its service (once).  Any thread."""
        with self._lock:
            if self._started:
                return
            self._started = True
        from otrace.oshell import OShell

        try:
            shell = OShell(**self.kwargs)
            shell.loop()
            self.shell = shell
            log.warning(
                "otrace: activated; attach with: otrace attach %d  (socket %s)",
                os.getpid(),
                shell.service.path,
            )
        except Exception:
            log.exception("otrace: activation failed")
        finally:
            self.activated.set()

    def _on_signal(self, signum: int, frame: Any) -> None:
        # a signal handler does as little as possible: the work happens on a thread
        threading.Thread(target=self.activate, name="otrace-activate", daemon=True).start()


def signal_number(name: str | int) -> int:
    """``SIGUSR1``, ``USR1`` or a number; OTraceError for anything else."""
    if isinstance(name, int):
        return name
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(getattr(signal.Signals, text))
    except AttributeError:
        raise OTraceError(f"unknown signal {name!r} for activate_on") from None


def install(
    globals_dict: dict[str, Any] | None = None,
    *,
    activate_on: str | int | None = None,
    listen: bool | str = True,
    allow_unsafe: bool = False,
    **kwargs: Any,
) -> Installation:
    """Install otrace in this program; see the module docstring.

    :param globals_dict: what ``/osh/globals`` shows (default: ``__main__``'s globals).
    :param activate_on: a signal (``"SIGUSR1"``); default ``$OTRACE_ACTIVATE``, else now.
    :param listen: the service's socket (``True``: the default path).
    :param kwargs: more :class:`~otrace.oshell.OShell` arguments.
    """
    if globals_dict is None:
        globals_dict = vars(sys.modules["__main__"])
    options = dict(
        globals_dict=globals_dict,
        listen=listen,
        allow_unsafe=allow_unsafe,
        no_input=True,
        new_thread=True,
        banner="",
    )
    options.update(kwargs)
    installation = Installation(options)
    trigger = activate_on if activate_on is not None else os.environ.get(ACTIVATE_ENV) or None
    if trigger is None:
        installation.activate()
    else:
        signal.signal(signal_number(trigger), installation._on_signal)
    return installation
