"""Requests and tasks from the shell: hold (by condition), unhold, cancel.

``hold -c`` rules are kept in the runtime's ``hold_rules`` and tested by the server
integration at the start of every request; held requests are ordinary holds
(``/osh/recent/holds``, ``resume``).
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

from otrace.errors import OTraceError, SafeModeError, UsageError
from otrace.shell import evaluate
from otrace.shell.registry import Arg, Args, Option, command
from otrace.vfs.asyncview import describe_coroutine, task_state
from otrace.vfs.live import TaskNode, TasksDir, task_of


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("-n needs a count of at least 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("--timeout needs a positive number of seconds")
    return value


HOLD_OPTIONS = (
    Option("c", "Python expression over request and handler", value="CONDITION"),
    Option("n", "hold at most the next N matching requests", value="N", convert=_positive_int),
    Option(
        "t", "resume each held request after S seconds", value="S", convert=_seconds, long="timeout"
    ),
)


@command(
    "hold",
    options=HOLD_OPTIONS,
    args=(Arg("HANDLER", "text", optional=True, repeat=True),),
)
def hold(sh, args: Args) -> None:
    """Hold the next requests matching a condition at the start of their handler method.

    No code changes: CONDITION is a Python expression over request (Tornado's
    HTTPServerRequest) and handler (the RequestHandler), e.g.
    hold -c 'request.headers.get("X-Debug") == "me"'.  HANDLER names limit it to those
    handler classes.  A held request appears in /osh/recent/holds; resume it (or resume
    --raise EXC).  A condition that raises or takes over 50 ms counts as no match and is
    reported once.  Without -c, list the hold rules.  See also unhold.
    """
    condition = args.opts.get("c")
    if condition is None:
        if args.opts or args.words:
            raise UsageError(f"hold: give -c CONDITION; usage: {args.usage}")
        if not sh.runtime.hold_rules.rules:
            sh.out.write("No hold rules")
        for rule in sh.runtime.hold_rules.rules:
            sh.out.write(rule.render())
        return
    # parsed first: the safe-mode check would raise a bare SyntaxError on invalid text
    try:
        tree = ast.parse(condition, mode="eval")
    except SyntaxError as exc:
        raise UsageError(f"hold: invalid condition {condition!r}: {exc.msg}") from None
    if sh.params.safe_mode:
        try:
            evaluate.check_safe(condition)
        except SafeModeError as exc:
            raise SafeModeError(f"hold: {exc}") from None
    count = args.opts.get("n")
    handlers = tuple(_handler_name(sh, word) for word in args.words)
    if count is None:
        why = _matches_everything(sh, tree, sh.globals)
        if why:
            raise UsageError(
                f"hold: {condition!r} {why}, so it would hold every request; "
                "add -n N to hold only the next N"
            )
    rule = sh.runtime.hold_rules.add(
        condition, sh.globals, count=count, timeout=args.opts.get("t"), handlers=handlers
    )
    sh.out.write(f"Holding {rule.render()}")
    if sh.runtime.requests.loop is None:
        sh.out.error(
            "warning: no server tracks requests yet (otrace.tornado.attach); the rule waits"
        )


def _handler_name(sh, word: str) -> str:
    try:
        value = sh.resolve(word).value
    except OTraceError:
        return word.rsplit(".", 1)[-1]
    return value.__name__ if inspect.isclass(value) else word.rsplit(".", 1)[-1]


def _matches_everything(sh, tree: ast.Expression, globals_dict: dict[str, Any]) -> str:
    """Why the condition looks like it matches every request ("" if it does not)."""
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    if not names & {"request", "handler"}:
        return "does not look at request or handler"
    running = sh.runtime.requests.running()[-50:]  # finished ones keep no request object
    if len(running) < 3:
        return ""
    code = compile(tree, "<hold condition>", "eval")
    for rec in running:
        try:
            if not eval(code, globals_dict, {"request": rec.request, "handler": rec.handler}):
                return ""
        except BaseException:  # noqa: B036 - the program's objects may raise anything
            return ""
    return f"matches each of the {len(running)} requests in flight"


@command("unhold", args=(Arg("RULE_NUMBER|all", "text", optional=True, choices=("all",)),))
def unhold(sh, args: Args) -> None:
    """Remove a hold -c rule (by its #number), or all of them (requests already held stay held)."""
    word = args.words[0].lstrip("#") if args.words else "all"
    if word == "all":
        gone = sh.runtime.hold_rules.remove()
    elif word.isdigit():
        gone = sh.runtime.hold_rules.remove(int(word))
        if not gone:
            raise UsageError(f"unhold: no hold rule #{word} (type hold to list them)")
    else:
        raise UsageError(f"usage: {args.usage}")
    for rule in gone:
        sh.out.write(f"Removed hold rule #{rule.number} -c {rule.condition!r}")
    if not gone:
        sh.out.write("No hold rules")


@command(
    "cancel",
    options=(Option("y", "do not ask for confirmation"),),
    args=(Arg("TASK|REQUEST", "path"),),
    unsafe="cancel: cancelling tasks",
)
def cancel(sh, args: Args) -> None:
    """Cancel an asyncio task of the program (a name in /osh/tasks, or a request id r17).

    Asks for confirmation (answer y); -y does not ask.  Refused in safe mode.
    """
    word = args.words[0]
    task, label = _find_task(sh, word)
    if task.done():
        raise OTraceError(f"cancel: {label} has already finished ({task_state(task)})")
    if args.flag("y"):
        _cancel(sh, task, label)
        return

    def answer(line: str, result) -> None:
        sh.hooks.pop("collect_line", None)
        previous, sh.out = sh.out, result
        try:
            if line.strip().lower() in ("y", "yes"):
                _cancel(sh, task, label)
            else:
                sh.out.write(f"Not cancelled: {label}")
        finally:
            sh.out = previous

    sh.hooks["collect_line"] = answer
    sh.out.write(f"Cancel {label} ({describe_coroutine(task)})? [y/N]")
    sh.out.incomplete = True


def _find_task(sh, word: str) -> tuple[Any, str]:
    if word[:1] == "r" and word[1:].isdigit():
        rec = sh.runtime.requests.get(word)
        if rec is None:
            if sh.runtime.requests.get_done(word) is not None:
                raise OTraceError(f"cancel: request {word} has already finished")
            raise OTraceError(f"cancel: no request {word} (ls /osh/requests)")
        task = task_of(rec, sh.runtime.requests)
        if task is None:
            raise OTraceError(f"cancel: request {word} has no task (yet)")
        return task, f"request {word}"
    try:
        node = TasksDir(sh.runtime.requests)[word]
    except KeyError:
        node = None
    if node is None:
        try:
            value = sh.resolve(word).value
        except OTraceError:
            raise OTraceError(f"cancel: no task {word!r} (ls /osh/tasks)") from None
        if isinstance(value, TaskNode):
            node = value
        elif callable(getattr(value, "cancel", None)) and callable(getattr(value, "done", None)):
            return value, f"task {word}"
        else:
            raise OTraceError(f"cancel: {word} is not a task")
    return node.task, f"task {word}"


def _cancel(sh, task: Any, label: str) -> None:
    try:
        task.get_loop().call_soon_threadsafe(task.cancel)
    except RuntimeError as exc:
        raise OTraceError(f"cancel: {label}: {exc}") from None
    sh.out.write(f"Cancelling {label}")
