"""The shell itself: set, help, alias, source, repeat, lock, run, quit, shutdown."""

from __future__ import annotations

from otrace.errors import OTraceError, ParamError, PathError, UsageError
from otrace.shell import safety
from otrace.shell.listing import columns
from otrace.shell.redirect import absolute_file
from otrace.shell.registry import REGISTRY, Arg, Args, Option, command, lookup, render_words


def _safe_set(sh, args: Args) -> None:
    if len(args.words) == 2:
        safety.check_param(args.words[0])


def _safe_source(sh, args: Args) -> None:
    if args.words and not args.words[0].endswith((".trc", ".osh")):
        raise safety.refuse("source of files other than .trc/.osh command files")


@command(
    "set",
    args=(Arg("parameter", "param", optional=True), Arg("value", "param_value", optional=True)),
    outside_osh=True,
    safe_check=lambda sh, args: _safe_set(sh, args),
)
def set_(sh, args: Args) -> None:
    """Show all parameters, show one, or set one (help set lists what each one does).

    Values are checked against the parameter's type: true/false for switches, numbers for
    counts and intervals; None or "" clear a text parameter.
    """
    params = sh.params
    if not args.words:
        for name in params.names():
            sh.out.write(params.render(name))
        return
    name = args.words[0]
    params.spec(name)
    if len(args.words) == 2:
        value = args.words[1]
        if name == "password" and value and ":" not in value:
            raise ParamError(
                "No salt in encrypted password (make one with otrace.encrypt_password); SET PASSWORD FAILED"
            )
        params.set_text(name, value)
    sh.out.write(params.render(name))


@command(
    "help", args=(Arg("command|*", "command", optional=True, choices=("*",)),), outside_osh=True
)
def help_(sh, args: Args) -> None:
    """Show the commands, one command's help, or every command's synopsis (help *)."""
    if not args.words:
        sh.out.write("Commands:")
        for row in columns(sorted(n for n in REGISTRY if not n.startswith("_")), sh.width):
            sh.out.write(row)
        sh.out.write("")
        sh.out.write("A line that is not a command is a Python expression to print (pr).")
        sh.out.write("TAB completes commands, paths and parameters.  'help CMD' for one command,")
        sh.out.write("'help *' for all synopses, 'alias' for the aliases.")
        sh.out.write("In /osh/web/<user>, lines are JavaScript for that browser.")
        return
    word = args.words[0]
    if word == "*":
        for name in sorted(n for n in REGISTRY if not n.startswith("_")):  # _web: internal
            cmd = REGISTRY[name]
            sh.out.write(f"{cmd.usage:<50} # {cmd.summary}")
        sh.out.write("In code: otrace.traceassert(condition, label=..., action=...)")
        return
    if word in sh.aliases and word not in REGISTRY:
        sh.out.write(f"{word} is an alias for: {' '.join(sh.aliases[word])}")
        return
    cmd = lookup(word)
    sh.out.write(cmd.help_text())
    if cmd.name == "set":
        sh.out.write("")
        sh.out.write("Parameters:")
        for name in sh.params.names():
            p = sh.params.spec(name)
            sh.out.write(f"  {name:<17} {p.type.__name__:<5} default {p.default!r:<8} {p.help}")


@command(
    "alias",
    args=(
        Arg("name", "alias", optional=True),
        Arg("command words", "line", optional=True, repeat=True),
    ),
    outside_osh=True,
    parse_options=False,
)
def alias(sh, args: Args) -> None:
    """Define, show, list or delete aliases (alias name "" deletes).

    In the words, \\* stands for all arguments, \\** for them as Python values (for calls),
    \\1, \\2 ... for one each; without markers the arguments are appended.  Write the
    markers inside single quotes or with a doubled backslash: alias hi pr '"\\1-\\2"'.
    """
    words = args.words
    if not words:
        for name in sorted(sh.aliases):
            sh.out.write(f"{name} {render_words(sh.aliases[name])}")
        return
    name = words[0]
    if len(words) == 1:
        if name not in sh.aliases:
            raise UsageError(f"No such alias: {name}")
        sh.out.write(f"{name} {render_words(sh.aliases[name])}")
        return
    if len(words) == 2 and words[1] == "":
        if sh.aliases.pop(name, None) is None:
            raise UsageError(f"No such alias: {name}")
        return
    sh.aliases[name] = words[1:]


@command(
    "source",
    args=(Arg("FILE", "file"),),
    outside_osh=True,
    safe_check=lambda sh, args: _safe_source(sh, args),
)
def source(sh, args: Args) -> None:
    """Run the commands in FILE (relative names: from the work directory ~~w).

    Blank lines and lines starting with # are skipped; each line is echoed after the prompt
    unless it starts with 'noecho '.  An error names the file and line, and the rest runs.
    """
    sh.source(absolute_file(sh, args.words[0]), sh.out)


@command("repeat", args=(Arg("command", "line"),), raw=True, outside_osh=True)
def repeat(sh, args: Args) -> None:
    """Run a command every repeat_interval seconds, redrawing, until a key is pressed."""
    line = args.raw.strip()
    if not line:
        raise UsageError(f"usage: {args.usage}")
    sh.out.action, sh.out.action_arg = "repeat", line


@command("lock", outside_osh=True)
def lock(sh, args: Args) -> None:
    """Lock the console until the password is typed (asks for one if none is set)."""
    sh.out.action = "lock"


@command(
    "run",
    args=(Arg("function"), Arg("arg", "text", optional=True, repeat=True)),
    unsafe="run: running program functions",
)
def run(sh, args: Args) -> None:
    """Run a function in the main thread (when otrace was started to wait for run).

    The function gets the arguments as a list of strings if it was given any (or accepts
    one); it runs in the program's main thread while the shell stays usable.
    """
    if sh.runner is None:
        raise OTraceError(
            "Cannot run function unless otrace is in a separate thread and the main thread waits (otrace script.py, or loop(wait_to_run=True))"
        )
    name = args.words[0]
    try:
        func = sh.tree.resolve(sh.tree.parts(name, sh.cwd)).value
    except PathError:
        raise PathError(f"No function named {name}") from None
    if not callable(func):
        raise UsageError(f"{name} of type {type(func).__name__} is not callable")
    sh.runner(func, args.words[1:])
    sh.out.error(f"Running {name}")


@command("quit", outside_osh=True)
def quit_(sh, args: Args) -> None:
    """Detach this console (as Ctrl-D does); the program runs on.

    Other consoles stay attached; with the service listening, 'otrace attach PID' opens a
    console again.  'shutdown' stops the program.
    """
    sh.out.error("Detaching console...")
    sh.out.action = "quit"


@command(
    "shutdown",
    options=(Option("y", "yes: do not ask for confirmation"),),
    outside_osh=True,
)
def shutdown(sh, args: Args) -> None:
    """Stop the program: release holds and breaks, detach every console, end the program.

    Asks for confirmation (-y does not).  Refused in safe mode.  The program ends through
    its own shutdown path when it has one (otrace.tornado.attach stops the event loop),
    else as if Ctrl-C had been pressed in its main thread.
    """
    stop = sh.hooks.get("shutdown")
    if stop is None:
        raise OTraceError("This shell is not attached to a program it can stop")
    if sh.params.safe_mode:
        raise OTraceError("shutdown not permitted in safe mode; set safe_mode False")
    if not args.flag("y"):
        sh.out.action, sh.out.action_arg = "confirm", "shutdown -y"
        return
    stop()
    sh.out.error("Shutting down the program...")
    sh.out.action = "quit"  # this console goes at once: no prompt for a program that ends
