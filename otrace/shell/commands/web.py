"""/osh/web: what the operator types below ``/osh/web/<user>`` is JavaScript for that browser.

The session sends every line typed below ``/osh/web/<user>`` (other than the navigation
commands, ``set`` and ``repeat``) to the hidden command ``_web``.  It hands the text to the
*web backend* installed in ``sh.hooks["web"]`` and waits, up to ``web_timeout`` seconds, for
the browser's answer; so ``repeat`` re-sends the code and shows each answer.

A backend is any object with a blocking, thread-safe method::

    evaluate(path_comps: list[str], code: str, timeout: float) -> tuple[str, str]

returning ``(stdout, stderr)`` or raising :class:`~otrace.errors.OTraceError`.
:class:`otrace.web.bridge.WebBridge` is one.  A ``web_interface`` written for the original
otrace (class methods ``root_depth``, ``get_root_tree``, ``set_web_hook``, ``send_command``,
``trace_output``) is adapted by :func:`make_backend` with :class:`LegacyWebBackend`.

Thread safety: ``_web`` runs in the shell thread and blocks only that thread; backends must
never be waited on from the event-loop thread that serves the browsers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from otrace import log
from otrace.errors import OTraceError, SafeModeError
from otrace.shell.registry import Arg, Args, command

SAFE_MODE_MESSAGE = "Javascript console disabled in safe mode; set safe_mode False"


class WebBackend(Protocol):
    def evaluate(self, path_comps: list[str], code: str, timeout: float) -> tuple[str, str]:
        """Run ``code`` in the browser ``path_comps[0]``; (stdout, stderr).  Any thread but
        the event loop's."""
        ...


class LegacyWebBackend:
    """Makes a synchronous backend of an original-style ``web_interface``.

    The interface reports answers through the hook it was given (``set_web_hook``), as
    ``hook(op_type, repeat, path_comps, data)``: ``stderr`` (if any) then ``stdout``.  One
    request is outstanding at a time; output arriving with none outstanding is announced.

    Thread safety: :meth:`evaluate` from the shell thread; the hook from any thread.
    """

    def __init__(self, interface: Any, announce: Callable[[str], None] | None = None):
        self.interface = interface
        # the runtime's announce (default: the default runtime's), for unrequested output
        self._announce = announce if announce is not None else log.announce
        self._lock = threading.Lock()
        self._waiting: str | None = None  # browser name we wait for
        self._done = threading.Event()
        self._out: list[str] = []
        self._err: list[str] = []
        interface.set_web_hook(self.hook)

    def hook(self, op_type: str, repeat: bool, path_comps: list[str], data: str) -> None:
        name = path_comps[0] if path_comps else None
        with self._lock:
            mine = self._waiting is not None and name in (None, self._waiting)
            if mine:
                (self._err if op_type == "stderr" else self._out).append(str(data))
                if op_type == "stdout":
                    self._done.set()
                return
        if data:
            self._announce(f"web {name or '?'}: {data}")

    def evaluate(self, path_comps: list[str], code: str, timeout: float) -> tuple[str, str]:
        name = path_comps[0]
        with self._lock:
            self._waiting, self._out, self._err = name, [], []
            self._done.clear()
        try:
            self.interface.send_command(list(path_comps), code)
            if not self._done.wait(timeout):
                raise OTraceError(
                    f"No answer from browser {name} within {timeout:g}s (web_timeout)"
                )
            with self._lock:
                return "".join(self._out), "\n".join(e for e in self._err if e)
        finally:
            with self._lock:
                self._waiting = None


def make_backend(interface: Any, announce: Callable[[str], None] | None = None) -> WebBackend:
    """The backend for ``web_interface``: itself if it can ``evaluate``, else adapted (output
    nobody asked for goes to ``announce``)."""
    if callable(getattr(interface, "evaluate", None)):
        return interface
    return LegacyWebBackend(interface, announce)


@command(
    "_web",
    args=(Arg("javascript", "text"),),
    raw=True,
    unsafe="Javascript console disabled in safe mode",
)
def web(sh, args: Args) -> None:
    """Evaluate JavaScript in the browser of the current /osh/web/<user> directory.

    Typed implicitly: below /osh/web/<user> every line other than ls, cd, cdls, pushd,
    popd, swapd, pwd, help, alias, quit, repeat and set is JavaScript.  The answer (the
    value as text) or the browser's error is printed; no answer within web_timeout
    seconds is an error.  Needs safe_mode False.
    """
    code = args.raw.strip()
    if not code:
        return
    if sh.params.safe_mode:
        raise SafeModeError(SAFE_MODE_MESSAGE)
    comps = list(sh.cwd[2:])
    if sh.cwd[:2] != ("osh", "web") or not comps:
        raise OTraceError("_web: cd to /osh/web/<user> first")
    backend = sh.hooks.get("web")
    if backend is None:
        raise OTraceError("No web interface: start OShell with web_interface=... to use /osh/web")
    tree = sh.mounts.get("web")
    if isinstance(tree, dict) and comps[0] not in tree:
        raise OTraceError(f"Browser {comps[0]} is not connected (any more); cd /osh/web; ls")
    stdout, stderr = backend.evaluate(comps, code, sh.params.web_timeout)
    if stdout or not stderr:
        sh.out.write(stdout)
    if stderr:
        sh.out.error(stderr)


@command("remotelog", args=(Arg("on|off", "text", choices=("on", "off")),))
def remotelog(sh, args: Args) -> None:
    """In /osh/web/<user>: announce that browser's console output and errors (on) or not.

    Off by default: a page's own console reaches the operator only when asked for, and then
    rate- and size-limited (see docs/WebBridge.rst).
    """
    word = args.words[0] if args.words else ""
    if word not in ("on", "off"):
        raise OTraceError("usage: remotelog on|off (in /osh/web/<user>)")
    comps = list(sh.cwd[2:])
    if sh.cwd[:2] != ("osh", "web") or not comps:
        raise OTraceError("remotelog: cd to /osh/web/<user> first")
    backend = sh.hooks.get("web")
    switch = getattr(backend, "set_remotelog", None)
    if switch is None:
        raise OTraceError("remotelog: this web interface cannot forward a page's console")
    switch(comps[0], word == "on")
    sh.out.write(f"{comps[0]}: console {'announced' if word == 'on' else 'not announced'}")
