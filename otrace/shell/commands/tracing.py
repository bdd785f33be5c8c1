"""Tracing from the shell: trace, untrace, tag, untag."""

from __future__ import annotations

import inspect
import types
from typing import Any

from otrace import tracing
from otrace.contexts.record import FrameContext
from otrace.errors import OTraceError, PathError, TraceError, UsageError
from otrace.shell.registry import Arg, Args, Option, command
from otrace.shell.targets import resolve_target
from otrace.tracing import dbkeys


def _count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise ValueError("Expected integer argument for option -n (N, +N or -N)") from None
    if count == 0:
        raise ValueError("0 traces nothing; N: trace N matches, -N: skip N first; no -n: all")
    return count


TRACEABLE = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.ModuleType,
    type,
    classmethod,
    staticmethod,
    property,
)

TRACE_OPTIONS = (
    Option(
        "a",
        "what to do on a match",
        value="ACTION",
        choices=tracing.ACTIONS,
        unsafe="actions that stop, debug or tag the program",
    ),
    Option(
        "c",
        "when: call, return, all, tagged[ARG], or NAME<op>VALUE,... (op: == != < <= > >=)",
        value="COND",
    ),
    Option(
        "n",
        "+N: trace N matches then stop; -N: skip the first N matches",
        value="±COUNT",
        convert=_count,
    ),
)


def _db_key(sh, text: str) -> str | None:
    """The db interface's key for a /osh/db/... operand (None for other operands)."""
    if text in ("*", "all"):
        return None
    try:
        parts = sh.tree.parts(text, sh.cwd)
    except PathError:
        return None
    if parts[:2] != ("osh", "db") or len(parts) < 3:
        return None
    interface = sh.hooks.get("db")
    if interface is None:
        raise UsageError("trace: no db interface (OShell(db_interface=...)) for /osh/db keys")
    key = interface.key_from_path(list(parts[2:]))
    if not key:
        raise UsageError(f"Invalid db path for tracing: {text}")
    return key


def _trace_args(sh, text: str):
    """(target, parent, attr, shown name) for trace/untrace operands."""
    if text == "*":
        return "*", None, None, "*"
    target = resolve_target(sh, text)
    if not issubclass(type(target.obj), TRACEABLE):  # type(): no program code runs here
        raise TraceError(f"Cannot trace {text}: not a function, method, class or module")
    if inspect.ismodule(target.obj):
        return target.obj, None, None, target.name
    parent = target.parent if not isinstance(target.parent, dict) else None
    return target.obj, parent, target.attr if parent is not None else None, target.name


@command(
    "trace",
    options=TRACE_OPTIONS,
    args=(Arg("Class.method|function|Class|module|*", "target", optional=True),),
)
def trace(sh, args: Args) -> None:
    """Trace a function, method, whole class or module; without a name, list the traces.

    With no -c only exceptions passing through are recorded.  -c call/return/all record every
    call, return, or both; -c name==apple,qty>=2 records calls whose arguments match (values
    are typed: 2, 2.5, True, None, else text; 'return>5' tests the return value; arg.attr
    tests one attribute); -c tagged / taggedARG match tagged arguments.  Actions: break
    (block the thread until resume; refused on an event-loop thread), hold (async def: the
    request waits until resume), pdb/ipdb (debugger in the traced thread), tag (tag self).
    Each event leaves a trace context in /osh/recent and is announced at the console.
    A /osh/db/... path traces that database key (with a db interface): -c get, put, delete,
    modify or all, or conditions on the entity's fields; -a break.
    """
    if not args.words:
        if args.opts:
            raise UsageError(f"trace: options need a target; usage: {args.usage}")
        specs: list[Any] = [
            *tracing.traces(sh.runtime.tracer),
            *dbkeys.traced_keys(sh.runtime.tracer),
        ]
        if not specs:
            sh.out.write("Nothing is traced")
        for spec in specs:
            line = f"{spec.render()}   matches: {spec.matches}"
            if spec.last_error:
                line += f"   last condition error: {spec.last_error}"
            sh.out.write(line)
        return
    key = _db_key(sh, args.words[0])
    if key is not None:
        keyspec = dbkeys.trace_key(
            key,
            args.opts.get("c", ""),
            args.opts.get("a"),
            args.opts.get("n", 0),
            sh.runtime.tracer,
        )
        sh.out.write(f"Tracing {keyspec.render()}")
        return
    target, parent, attr, name = _trace_args(sh, args.words[0])
    spec = tracing.trace(
        target,
        parent,
        attr,
        name=name,
        condition=args.opts.get("c", ""),
        action=args.opts.get("a"),
        count=args.opts.get("n", 0),
        tracer=sh.runtime.tracer,
    )
    sh.out.write(f"Tracing {spec.render()}")
    for warning in spec.warnings:
        sh.out.error(f"warning: {warning}")


@command("untrace", args=(Arg("Class.method|function|Class|*|all", "target", choices=("all",)),))
def untrace(sh, args: Args) -> None:
    """Stop tracing a target (and unwrap it); 'untrace all' drops every trace."""
    word = args.words[0]
    if word == "all":
        tracing.untrace_all(sh.runtime.tracer)
        dbkeys.untrace_all(sh.runtime.tracer)
        sh.out.write("untraced all tracing")
        return
    key = _db_key(sh, word)
    if key is not None:
        dbkeys.untrace_key(key, sh.runtime.tracer)
        sh.out.write(f"untraced {key}")
        return
    try:
        target, _, _, name = _trace_args(sh, word)
        tracing.untrace(target, sh.runtime.tracer)
    except (PathError, TraceError):
        tracing.untrace(word, sh.runtime.tracer)  # a registry key such as Cart. or a vanished name
        name = word
    sh.out.write(f"untraced {name}")


def _tag_target(sh, words: list[str]):
    if words and words[0] != ".":
        return sh.resolve(words[0]).value
    here = sh.here().value
    if issubclass(type(here), FrameContext):  # type(): a program's __class__ may raise
        if "self" not in here:
            raise OTraceError("No self object to tag in trace context")
        return here["self"]
    return here


@command(
    "tag",
    args=(
        Arg("object|.", optional=True),
        Arg("label|id|time", "text", optional=True, choices=("id", "time")),
    ),
    unsafe="tag: adding an attribute to a program object",
)
def tag(sh, args: Args) -> None:
    """Tag an object (default: self in a trace context, else the current directory's object).

    The label defaults to id (0x<address>); 'time' uses a timestamp.  A tags context is made
    and -c tagged traces then follow the object through other calls.
    """
    obj = _tag_target(sh, args.words)
    label = args.words[1] if len(args.words) > 1 else "id"
    sh.out.write(tracing.tag(obj, label, _recorder=sh.runtime.recorder))


@command(
    "untag",
    args=(Arg("object|.", optional=True),),
    unsafe="untag: removing an attribute from a program object",
)
def untag(sh, args: Args) -> None:
    """Remove an object's tag."""
    tracing.untag(_tag_target(sh, args.words))
