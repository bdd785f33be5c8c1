"""The :class:`OShell` class: start, the local console, sessions, shutdown.

See :mod:`otrace.oshell` for its use and thread rules.  The class stays whole: its start,
console hand-over and shutdown share the same thread and state.
"""

from __future__ import annotations

import _thread
import os
import stat
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from otrace import log
from otrace._version import __version__
from otrace.console import AttachError, Console, RemoteSession, make_console
from otrace.errors import OTraceError, SafeModeError
from otrace.oshell.runs import RunRequests
from otrace.runtime import Runtime, default
from otrace.service import Service
from otrace.shell import commands as _commands  # noqa: F401 - declares every command
from otrace.shell.commands.web import make_backend as make_web_backend
from otrace.shell.session import Session
from otrace.tracing import dbkeys

DEFAULT_BANNER = f"  ***otrace object shell (v{__version__})*** (type 'help' for info)"
LISTEN_ENV = "OTRACE_LISTEN"


def listen_setting(listen: bool | str | None) -> bool | str:
    """``listen`` as given, else from ``$OTRACE_LISTEN`` (``1``/``true``: the default
    socket; ``0``/empty: no; anything else: a socket path)."""
    if listen:
        return listen
    env = os.environ.get(LISTEN_ENV, "").strip()
    if env.lower() in ("", "0", "false", "no", "off"):
        return False
    if env.lower() in ("1", "true", "yes", "on"):
        return True
    return env


class OShell:
    """The object shell.  Accepts the original's arguments (see docs/embedding.rst).

    :param globals_dict: the program's globals, at ``/osh/globals`` and used for evaluation.
    :param locals_dict: shown at ``/osh/locals``.
    :param init_func: called with the shell, in the shell thread, before the init file.
    :param init_file: commands run at start (relative names: from ``work_dir``).
    :param allow_unsafe: permit ``set safe_mode False``.
    :param work_dir: what ``~~w`` means (default: the process's cwd).
    :param new_thread: run the console in a daemon thread (``loop`` returns at once).
    :param no_input: never read input; only the init file runs (for embedding via execute).
    :param echo_callback: called with every piece of text the console writes.
    :param eventloop_callback: thread-safe "run this on the program's loop" (default: found
        when needed, e.g. Tornado's ``IOLoop.add_callback``).
    :param hold_wrapper: accepted for compatibility; holds are awaitables now.
    :param web_interface, db_interface: providers for ``/osh/web`` and ``/osh/db``.
    :param listen: ``True`` (the default socket path), a socket path, or ``False``; when
        omitted, ``$OTRACE_LISTEN`` decides.  The service starts with :meth:`loop` (or
        :meth:`start_service`).
    """

    def __init__(
        self,
        globals_dict: dict[str, Any] | None = None,
        locals_dict: dict[str, Any] | None = None,
        init_func: Callable[[OShell], Any] | None = None,
        init_file: str | None = None,
        allow_unsafe: bool = False,
        work_dir: str = "",
        add_env: dict[str, str] | None = None,
        banner: str | None = None,
        no_input: bool = False,
        new_thread: bool = False,
        echo_callback: Callable[[str], Any] | None = None,
        db_interface: Any = None,
        web_interface: Any = None,
        hold_wrapper: Any = None,
        eventloop_callback: Callable[[Callable[[], Any]], Any] | None = None,
        listen: bool | str | None = None,
        runtime: Runtime | None = None,
        _stdin: Any = None,
        _stdout: Any = None,
        _stderr: Any = None,
    ):
        if work_dir and not os.path.isabs(work_dir):
            raise OTraceError(f"work_dir must be absolute: {work_dir}")
        self.runtime = rt = runtime if runtime is not None else default()
        self._session_args = (globals_dict, locals_dict, allow_unsafe, work_dir, add_env)
        self.db_interface = db_interface
        self.web_interface = web_interface
        self.listen = listen_setting(listen)
        self.banner = DEFAULT_BANNER if banner is None else banner
        self.service = Service(self.new_session, banner=self.banner, runtime=rt)
        self.session = self.new_session()
        if db_interface is not None and hasattr(db_interface, "set_access_hook"):
            db_interface.set_access_hook(dbkeys.access_hook_for(rt.tracer))
        self.init_func = init_func
        self.init_file = init_file
        self.no_input = no_input
        self.new_thread = new_thread
        self.echo_callback = echo_callback
        self.hold_wrapper = hold_wrapper
        self.eventloop_callback = eventloop_callback
        self.stdin = _stdin or sys.stdin
        self.stdout = _stdout or sys.stdout
        self.stderr = _stderr or sys.stderr
        self.console: Console | None = None  # the local console, while it runs
        self.thread: threading.Thread | None = None
        self._runs = RunRequests(rt)  # wait_to_run: what ``run`` asks this thread to do
        self._shut = threading.Event()
        self.ready = threading.Event()  # set once init_func and the init file have run
        self._shutdown_lock = threading.Lock()
        self._shutting = False  # shutdown() was called (under the lock)
        self._quit_at_start = False
        self._wait_to_run = False
        self._stopping = False
        self.on_shutdown: list[Callable[[], Any]] = []  # called once, at shutdown, any thread
        rt.shell = self  # the runtime's embedded shell (was OShell.instance)
        # so `set pickle_file` writes
        rt.persistence.install(rt.params, rt.store, workdir=work_dir or os.getcwd())
        rt.logparams.install(rt.params)
        if eventloop_callback is not None:
            rt.holds.set_eventloop_callback(eventloop_callback)

    # -- sessions -----------------------------------------------------------------------
    def new_session(self) -> Session:
        """A shell session on this program: the local console's, or an attached one's.
        Each has its own cwd, directory stack, aliases and lock; the rest is shared."""
        globals_dict, locals_dict, allow_unsafe, work_dir, add_env = self._session_args
        session = Session(
            globals_dict,
            locals_dict,
            allow_unsafe=allow_unsafe,
            work_dir=work_dir,
            add_env=add_env,
            runtime=self.runtime,
        )
        if self.web_interface is not None:  # /osh/web: the browsers the app keeps connected
            session.mounts["web"] = self.web_interface.get_root_tree()
            session.hooks["web"] = make_web_backend(self.web_interface, self.runtime.announce)
        if self.db_interface is not None:  # /osh/db: the application's own tree, browsed as is
            session.mounts["db"] = self.db_interface.get_root_tree()
            session.hooks["db"] = self.db_interface  # trace /osh/db/...: key_from_path
        session.mounts["audit"] = self.service.audit.lines
        session.hooks["shutdown"] = self._shutdown_command
        if getattr(self, "session", None) is not None:
            session.runner = self.session.runner
        return session

    def start_service(self) -> str | None:
        """Listen for consoles if ``listen`` asks for it; the socket path (None if not
        listening).  Idempotent; any thread."""
        if not self.listen or self._shut.is_set():
            return self.service.path
        path = None if self.listen is True else str(self.listen)
        try:
            return self.service.listen(path)
        except (OSError, OTraceError) as exc:
            log.logger.error("otrace: cannot listen for consoles: %s", exc)
            return None

    # -- running ------------------------------------------------------------------------
    def loop(self, wait_to_run: bool = False) -> threading.Event:
        """Start the service and the local console: in this thread (returns when the
        console detaches) or in its own thread.

        With ``wait_to_run`` the calling thread then serves ``run`` requests until shutdown.
        Returns :attr:`ready`, set once ``init_func`` and the init file have run (or the
        shell ended first): ``shell.loop().wait(timeout)`` before running program code that
        the init file is meant to trace.
        """
        self.start_service()
        if wait_to_run:
            self._wait_to_run = True
            self.session.runner = self._runs.request
        if self.new_thread or wait_to_run:
            self.thread = threading.Thread(target=self._run, name="otrace-shell", daemon=True)
            self.thread.start()
            if wait_to_run:
                self._runs.serve()
        else:
            self._run()
        return self.ready

    def _run(self) -> None:
        console: Console | None = None
        if not self.no_input and not self._shut.is_set() and self._has_console_input():
            backend = RemoteSession(self.service.connect_local(self.session), "terminal")
            try:
                backend.hello("attach")
                local = self.stdin is sys.stdin
                console = make_console(
                    backend,
                    self.stdin,
                    self.stdout,
                    self.stderr,
                    self.echo_callback,
                    local=self.runtime if local else None,
                )
            except (AttachError, OSError) as exc:
                backend.close()
                if not self._shut.is_set():
                    log.logger.error("otrace: no local console: %s", exc)
        self.console = console
        try:
            if self.init_func is not None:
                try:
                    self.init_func(self)
                except Exception:
                    self._say("init_func failed:\n" + traceback.format_exc().rstrip(), err=True)
            if self.banner and (console is not None or self.no_input):
                self._say(self.banner)  # (consoles that attach later get it on attaching)
            self._run_line(self._init_file_command())
            if self.no_input:
                return
            # (unless something is open there already, e.g. by otrace -p FILE --trust)
            unpickle_file = self.runtime.params.unpickle_file
            if unpickle_file and type(self.session.mounts.get("pickled")) is dict:
                self._run_line(f"unpickle {unpickle_file}")
            self.ready.set()
            if console is not None and not (self._shut.is_set() or self._quit_at_start):
                console.run()
        finally:
            self.ready.set()
            if console is not None:
                console.backend.close()
            if not self.no_input:
                self._console_gone(console)

    def _has_console_input(self) -> bool:
        """Whether to read commands from our stdin: a terminal we are in the foreground of,
        or a pipe/file of commands; not /dev/null, a closed stream, or a background job."""
        try:
            fd = self.stdin.fileno()
        except (AttributeError, ValueError, OSError):
            return self.stdin is not None and hasattr(self.stdin, "readline")
        try:
            if os.isatty(fd):
                return os.tcgetpgrp(fd) == os.getpgrp()  # a background job would be stopped
            mode = os.fstat(fd).st_mode
        except OSError:
            return False
        return not stat.S_ISCHR(mode)  # /dev/null and friends: no commands will come

    def _console_gone(self, console: Any) -> None:
        """The local console detached (or never was): say how to get back in."""
        if self._shut.is_set() or self._stopping:
            return
        path = self.service.path
        how = (
            f"attach with: otrace attach {os.getpid()}  (socket {path})"
            if path
            else f"it is not listening (set {LISTEN_ENV}=1 or OShell(listen=True) to attach)"
        )
        reason = "detached" if console is not None else "no console on this input"
        stop = (not self.new_thread or self._wait_to_run) and not path
        if stop:
            self.shutdown()
            return
        log.logger.warning("otrace: %s; the program runs on; %s", reason, how)

    def _say(self, text: str, err: bool = False) -> None:
        if self.console is not None:
            self.console._write(self.stderr if err else self.stdout, text + "\n")
            return
        stream = self.stderr if err else self.stdout
        try:
            stream.write(text + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass
        if self.echo_callback is not None:
            try:
                self.echo_callback(text + "\n")
            except Exception:
                pass

    def _run_line(self, line: str | None) -> None:
        """Run a start-up line through the local console (or directly without one)."""
        if not line:
            return
        if self.console is not None:
            result = self.console.execute(line)
            self.console.show(result)
            quit_ = result.action == "detach"
        else:
            result = self.session.execute(line)
            for stream, text, _kind in result.chunks:
                self._say(text, err=stream == "err")
            quit_ = result.action == "quit"
        if quit_:
            self._quit_at_start = True

    def _init_file_command(self) -> str | None:
        if not self.init_file:
            return None
        path = self.init_file
        if not os.path.isabs(path):
            path = os.path.join(self.session.tree.work_dir or os.getcwd(), path)
        return f"source '{path}'" if os.path.exists(path) else None

    def execute(self, line: str, here_doc: str | None = None) -> tuple[str, str]:
        """Run one command line and return (output, errors); nothing is printed."""
        if here_doc is not None:
            self.session.hooks["here_doc"] = here_doc
        try:
            result = self.session.execute(line)
        finally:
            self.session.hooks.pop("here_doc", None)
        return result.out, result.err

    # -- stopping -----------------------------------------------------------------------
    def _shutdown_command(self) -> None:
        """The ``shutdown`` command: stop otrace and the program (after the reply is out)."""
        if self.session.params.safe_mode:
            raise SafeModeError("shutdown not permitted in safe mode; set safe_mode False")
        ends_program = bool(self.on_shutdown) or self._wait_to_run
        self._stopping = True  # the local console's detach is not "the program runs on"

        def stop() -> None:
            self.shutdown()
            if not ends_program:  # nothing of the program's listens: stop it as Ctrl-C would
                _thread.interrupt_main()

        timer = threading.Timer(0.2, stop)
        timer.daemon = True
        timer.start()

    def shutdown(self) -> None:
        """Stop the shell: release waiting breaks and holds, end the console, then call the
        ``on_shutdown`` callbacks.  Idempotent; any thread."""
        # (no call under the lock: a SIGTERM handler calls this too, on the main thread, maybe
        # while it is in here -- Event.set() is Python code, where the handler can run)
        with self._shutdown_lock:
            first, self._shutting = not self._shutting, True
        if not first:
            return
        self._shut.set()
        self.runtime.holds.release_all("shutdown")
        if self.console is not None:
            self.console.stop()
        self.service.stop("the program is shutting down")
        self._runs.stop()
        self.session.close()
        for callback in self.on_shutdown:
            try:
                callback()
            except Exception:
                log.logger.exception("shutdown callback %r failed", callback)

    @property
    def is_shut_down(self) -> bool:
        return self._shut.is_set()
