"""The ``otrace`` command.

``otrace program.py``                 import the program and open the shell; ``run main``,
                                      ``run test a b`` call its functions in the main thread.
``otrace demo [--port N]``            run the Tornado demo with the console and say what to try.
``otrace -f NAME program.py [args]``  call ``NAME(*args)`` (see :func:`call_with_args`) and exit;
                                      if it raises, keep the shell open at the exception's
                                      trace context for post-mortem.
``otrace attach PID|NAME|SOCKET``     open a console on a running program's otrace service.
``otrace ps``                         list the programs on this machine one can attach to.
``otrace inject PID``                 start otrace in a running Python that never imported
                                      it (see otrace.inject).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import signal
import sys

from otrace.oshell import OShell

INIT_TIMEOUT = 60.0  # seconds the -f function waits for the init file


def load_program(path: str):
    """Import a program file as a module named after it (its __main__ block does not run)."""
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise OSError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec.loader.exec_module(module)
    return module


def call_with_args(func, args: list[str]):
    """``otrace -f NAME prog.py a b`` calls ``NAME('a', 'b')`` -- or ``NAME(['a', 'b'])``
    when NAME's only parameter is called ``args`` or ``argv`` (the original's ``main(args)``
    convention, where the list was always passed)."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        params = []
    if (
        len(params) == 1
        and params[0].name in ("args", "argv")
        and params[0].kind
        in (
            params[0].POSITIONAL_ONLY,
            params[0].POSITIONAL_OR_KEYWORD,
        )
    ):
        return func(list(args))
    return func(*args)


def record_failure(exc: BaseException, name: str) -> None:
    """Keep an exception that ended ``-f NAME`` as a trace context (for ``cd ~~``)."""
    from otrace.contexts.capture import capture_exception
    from otrace.runtime import default

    values, trc = capture_exception(
        exc, exc.__traceback__.tb_next if exc.__traceback__ else None, None
    )
    default().recorder.record("exceptions", name, type(exc).__name__, values, trc)


def browse_pickled(path: str, *, trust: bool = False) -> int:
    """A shell on a pickle database alone: ``otrace -p trace.db [--trust]``."""
    from otrace.contexts.safe import escape_controls
    from otrace.errors import OTraceError
    from otrace.shell.commands.persistence import mount_pickled

    shell = OShell({"__name__": "__otrace_postmortem__"}, allow_unsafe=True, work_dir=os.getcwd())
    try:
        print(mount_pickled(shell.session, path, [], trust=trust))
    except OTraceError as exc:
        print(f"otrace: {escape_controls(str(exc))}", file=sys.stderr)
        return 1
    shell.execute("cd /osh/pickled")
    shell.loop()
    return 0


def service_command(args: list[str]) -> int:
    """``otrace attach TARGET`` / ``otrace ps``."""
    from otrace.console.attach import attach, ps

    parser = argparse.ArgumentParser(prog=f"otrace {args[0]}")
    if args[0] == "attach":
        parser.description = "Open a console on a running program (quit or Ctrl-D detaches)."
        parser.add_argument("target", help="a pid, a program name (see otrace ps) or a socket")
        parser.add_argument(
            "more", nargs="*", help="with --all: more ssh://[user@]host/PROGRAM addresses"
        )
        parser.add_argument(
            "--inject",
            action="store_true",
            help="TARGET is the pid of a Python process without otrace: start otrace in it "
            "first (as otrace inject does), then attach",
        )
        parser.add_argument(
            "--path",
            action="append",
            default=[],
            metavar="DIR",
            help="with --inject: a directory holding the otrace package for the target",
        )
        parser.add_argument(
            "--all",
            action="store_true",
            help="TARGET is a program name: one console over all its processes (a fleet)",
        )
        parser.add_argument("--gdb", help="with --inject: the gdb to use")
        parser.add_argument(
            "--timeout", type=float, default=10.0, help="with --inject: seconds to wait"
        )
        opts = parser.parse_args(args[1:])
        if opts.target.startswith("ssh://") and not opts.all:
            from otrace.fleet.ssh import attach_ssh

            return attach_ssh(opts.target)
        if opts.all:
            from otrace.fleet.console import attach_all

            if not opts.target.startswith("ssh://"):
                return attach_all(opts.target)
            urls = [opts.target, *opts.more]
            programs = {u.rstrip("/").rsplit("/", 1)[-1] for u in urls}
            if len(programs) != 1 or not all(u.startswith("ssh://") for u in urls):
                parser.error("--all ssh://HOST/PROGRAM ...: one program, every target ssh://")
            hosts = tuple(u.rstrip("/").rsplit("/", 1)[0] for u in urls)
            return attach_all(programs.pop(), hosts=hosts)
        if opts.more:
            parser.error("several targets only with --all ssh://...")
        if opts.inject:
            return attach_injected(opts.target, opts.path, opts.gdb, opts.timeout)
        return attach(opts.target)
    parser.description = "List the programs on this machine an otrace console can attach to."
    parser.parse_args(args[1:])
    return ps()


def attach_injected(
    target: str, paths_: list[str], gdb: str | None = None, timeout: float = 10.0
) -> int:
    """``otrace attach --inject PID``: start otrace in ``PID`` (see :mod:`otrace.inject`),
    then attach to the service that start-up opened."""
    from otrace.console.attach import _say, attach
    from otrace.inject import InjectError
    from otrace.inject.injector import describe, inject

    if not target.isdigit():
        _say(sys.stderr, f"otrace: --inject needs a pid, not {target!r}")
        return 2
    try:
        result = inject(int(target), paths=paths_, gdb=gdb, timeout=timeout)
    except InjectError as exc:
        _say(sys.stderr, f"otrace inject: {exc}")
        return 2
    _say(sys.stderr, describe(result))
    path = result.get("socket") or ""
    if not path:
        _say(
            sys.stderr,
            f"otrace: process {target} started otrace without a service to attach to "
            f"(started {result.get('started')}; an older otrace?)",
        )
        return 2
    return attach(str(path))


def demo_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="otrace demo", description="Run the Tornado demo with the otrace console."
    )
    parser.add_argument("--port", type=int, default=8888, help="0 or busy: any free port")
    parser.add_argument("--addr", default="127.0.0.1", help="address to listen on")
    opts = parser.parse_args(argv)
    from otrace import demo

    return demo.run(opts.addr, opts.port)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["inject"]:
        from otrace.inject.injector import main as inject_main

        return inject_main(argv[1:])
    if argv[:1] == ["bridge"] and not os.path.exists("bridge"):
        parser = argparse.ArgumentParser(
            prog="otrace bridge",
            description="Copy standard input/output to and from an otrace service's socket "
            "(what otrace attach ssh://host/PROGRAM runs on the far host).",
        )
        parser.add_argument("target", help="a pid, a program name or a socket")
        from otrace.fleet.ssh import bridge

        return bridge(parser.parse_args(argv[1:]).target)
    if argv[:1] == ["demo"] and not os.path.exists("demo"):
        return demo_main(argv[1:])
    if argv[:1] in (["attach"], ["ps"]) and not os.path.exists(argv[0]):
        return service_command(argv)
    parser = argparse.ArgumentParser(
        prog="otrace", description="Object shell for a Python program."
    )
    parser.add_argument("-f", "--function", help="call this function of the program, then exit")
    parser.add_argument(
        "-p",
        "--pickled",
        metavar="DB",
        help="open a pickle database (set pickle_file) for post-mortem browsing",
    )
    parser.add_argument(
        "--trust",
        action="store_true",
        help="with -p: load stored objects with full pickle, which runs code the file names "
        "(default: load them as data)",
    )
    parser.add_argument(
        "program", nargs="?", help="the program file (imported, not run as __main__)"
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the function")
    opts = parser.parse_args(argv)
    if opts.trust and not opts.pickled:
        parser.error("--trust goes with -p DB")
    if opts.pickled:
        return browse_pickled(opts.pickled, trust=opts.trust)
    if not opts.program:
        parser.error("a program file (or -p DB) is required")
    if not os.path.isfile(opts.program) or not os.access(opts.program, os.R_OK):
        print(f"otrace: Unable to read file {opts.program}", file=sys.stderr)
        return 1
    try:
        module = load_program(opts.program)
    except Exception as exc:
        print(f"otrace: error importing {opts.program}: {exc}", file=sys.stderr)
        return 1
    func = None
    if opts.function:
        func = getattr(module, opts.function, None)
        if not callable(func):
            print(
                f"otrace: Program {opts.program} does not have function named '{opts.function}'",
                file=sys.stderr,
            )
            return 1
    shell = OShell(
        module.__dict__,
        module.__dict__,
        allow_unsafe=True,
        new_thread=True,
        init_file=module.__name__ + ".trc",
        work_dir=os.getcwd(),
    )
    # the programmer's own program, run for debugging: start unsafe, as pdb would (an
    # embedded shell in a live server, and otrace -p on a shared file, start in safe mode)
    shell.runtime.params.set("safe_mode", False)
    signal.signal(signal.SIGTERM, lambda *_: shell.shutdown())
    if func is None:
        shell.loop(wait_to_run=True)
        return 0
    ready = shell.loop()
    if not ready.wait(INIT_TIMEOUT):  # the init file sets the traces the function needs
        print(
            f"otrace: the init file did not finish within {INIT_TIMEOUT:g}s; running anyway",
            file=sys.stderr,
        )
    try:
        call_with_args(func, opts.args)
    except Exception as exc:
        from otrace.shell.evaluate import format_user_traceback

        print(format_user_traceback(exc), file=sys.stderr)
        record_failure(exc, opts.function)
        shell._run_line("cd ~~")  # through the console's service: never beside its own line
        print("The shell is open at the exception's context (cd ~~); quit to end.", file=sys.stderr)
        # the console's thread ends when it detaches (quit, Ctrl-D, end of input)
        while not shell.is_shut_down and shell.thread is not None and shell.thread.is_alive():
            shell.thread.join(0.5)
        shell.shutdown()
        return 1
    shell.shutdown()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
