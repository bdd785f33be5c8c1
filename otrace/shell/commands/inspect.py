"""Looking at values and code: pr (the default command), exec / !, view."""

from __future__ import annotations

import ast
import difflib
import inspect
import os
import pprint
import re
import sys
import textwrap
import types
from typing import Any

from otrace.contexts import safe_str
from otrace.contexts.record import FrameContext
from otrace.errors import OTraceError, PathError, SafeModeError, UsageError
from otrace.shell import evaluate, pure_eval, safety
from otrace.shell.redirect import read_text, write_output
from otrace.shell.registry import REGISTRY, Arg, Args, Option, command
from otrace.vfs import paths
from otrace.vfs.pure import pure_repr

_LONE_EQ = re.compile(r"(^|[^=!<>])=($|[^=])")


@command("pr", args=(Arg("python_expression", "python"),), raw=True)
def pr(sh, args: Args) -> None:
    """Print the value of an expression (the DEFAULT command: a line that is not a command).

    Names are looked up in the current directory first (inside a trace context: its
    captured variables), then in the program's globals.  pr a, b prints both, like print.
    pr /osh/path prints the object at that path without evaluating anything.
    In safe mode calls, assignments and _private attributes are refused.
    """
    expr = args.raw.strip()
    if not expr:
        raise UsageError(f"usage: {args.usage}")
    if "\n" in expr:
        raise UsageError("Line breaks are not permitted in expressions")
    safe = bool(sh.params.safe_mode)
    if expr.startswith("/osh") and " " not in expr:
        value = sh.tree.resolve(
            sh.tree.parts(expr.replace(".", "/") if "/" not in expr[5:] else expr, sh.cwd)
        ).value
        sh.out.write(_shown(value, safe))  # Result.write escapes control characters
        return
    if re.match(r"(import|from)\s", expr) or re.match(r"[\w.\[\]'\"]+\s*=[^=]", expr):
        raise UsageError("Use 'exec' or '!' to execute import or assignment statements")
    try:
        tree = evaluate.parse_expression(expr)
    except SyntaxError as exc:
        sh.out.error(evaluate.format_exception(exc))
        return
    if safe:
        _pr_pure(sh, tree, expr)
        return
    parts = (
        tree.body.elts if isinstance(tree.body, ast.Tuple) and not expr.startswith("(") else None
    )
    try:
        ns = sh.namespace()
        g = sh.eval_globals()
        if evaluate.is_async(expr, "eval"):
            values = [sh.run_await(evaluate.evaluate_async(expr, g, ns))]
        else:
            values = _evaluate_parts(sh, expr, parts, g, ns)
    except OTraceError:
        raise
    except BaseException as exc:  # noqa: B036 - typed code may raise anything
        text = evaluate.format_exception(exc)
        if _LONE_EQ.search(expr):
            text += "\n(to assign, use 'exec' or '!')"
        if isinstance(exc, NameError) and expr.isidentifier():
            names = [n for n in REGISTRY if not n.startswith("_")] + list(sh.aliases)
            near = difflib.get_close_matches(expr, names, n=3, cutoff=0.6)
            if near:
                text += f"\n(not a command either; did you mean {', '.join(near)}?)"
        sh.out.error(text)
        return
    if sh.params.pretty_print:
        lines = [pprint.pformat(v, width=max(sh.width, 20)) for v in values]
    else:
        lines = [" ".join(safe_str(v, 1_000_000) for v in values)]
    for line in lines:
        sh.out.write(line)  # Result.write escapes control characters


def _shown(value: Any, safe: bool) -> str:
    """A value as pr prints it: str; in safe mode without running program code."""
    if not safe:
        return safe_str(value, 1_000_000)
    return value if type(value) is str else pure_repr(value, 1_000_000)


def _pr_pure(sh, tree: ast.Expression, expr: str) -> None:
    """Safe mode: evaluate with only pure operations (see otrace.shell.pure_eval)."""
    body = tree.body
    parts = body.elts if isinstance(body, ast.Tuple) and not expr.startswith("(") else None
    lookup = pure_eval.namespace_lookup(sh.here().value, sh.tree.view, sh.eval_globals())
    evaluator = pure_eval.PureEvaluator(lookup)
    try:
        values = [evaluator.run(p) for p in (parts if parts is not None else [body])]
    except OTraceError:
        raise
    except Exception as exc:  # the expression's own error (KeyError, NameError, ...)
        builtin = type(exc).__module__ == "builtins"  # our own errors, of pure values
        sh.out.error(
            f"{type(exc).__name__}: {safe_str(exc, 500)}" if builtin else type(exc).__name__
        )
        return
    sh.out.write(" ".join(_shown(v, True) for v in values))


def _evaluate_parts(sh, expr: str, parts: Any, g: dict, ns: Any) -> list[Any]:
    with sh.exec_guard():
        if parts is None:
            return [evaluate.evaluate(expr, g, ns)]
        return [eval(compile(ast.Expression(p), "<otrace>", "eval"), g, ns) for p in parts]


@command(
    "exec",
    args=(Arg("python_code", "python"),),
    raw=True,
    prefix="!",
    aliases={"interrupt": "exec 'import os, signal; os.kill(os.getpid(), signal.SIGINT)'"},
    unsafe="Code execution",
)
def exec_(sh, args: Args) -> None:
    """Execute Python statements in the current directory (assignments change live state).

    Statements run with the program's globals and the current directory as locals: in
    /osh/globals they set module globals, in a class or object directory they set
    attributes, in a trace context they change only the snapshot.  A compound statement
    (for/if/def ...) continues on the following lines until an empty line.
    """
    if sh.params.safe_mode:
        raise SafeModeError("Code execution not permitted in safe mode; set safe_mode False")
    code = args.raw
    if not code.strip():
        raise UsageError(f"usage: {args.usage}")
    if sh.start_code(code, sh.out):
        return
    sh.run_code(code, sh.out)


VIEW_OPTIONS = (
    Option("d", "show the docstring instead of the source"),
    Option("i", "show inline (the terminal always shows inline; kept for old scripts)"),
)


_ROUTINES = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
)


def source_of(obj: Any) -> str:
    """The current source of a function, method or class (a patch's source if patched)."""
    if not issubclass(type(obj), (types.ModuleType, type, *_ROUTINES, classmethod, staticmethod)):
        raise OTraceError(f"No source for a {type(obj).__name__} object (not code)")
    func = getattr(obj, "__func__", obj)
    patched = getattr(func, "_otrace_patch_source", None)
    if type(patched) is str and patched:
        return patched
    if type(patched) is list and all(type(p) is str for p in patched):
        return "".join(patched)
    func = getattr(func, "_otrace_orig_function", func)
    try:
        text = inspect.getsource(func)
    except (OSError, TypeError) as exc:
        raise OTraceError(f"No source for {safe_str(obj, 80)}: {exc}") from None
    return textwrap.dedent(text)


def _viewable(value: Any) -> Any:
    """What ``view`` shows for a value: by its real type (a program's ``__class__`` may
    raise), and only code objects; anything else shows its class."""
    t = type(value)
    if issubclass(t, (classmethod, staticmethod, property)):
        return value.__func__ if not issubclass(t, property) else value.fget
    if issubclass(t, (types.ModuleType, type, *_ROUTINES)):
        return value
    if (
        issubclass(t, dict)
        and "__name__" in value
        and sys.modules.get(value["__name__"]) is not None
    ):
        return sys.modules[value["__name__"]]
    return type(value)


def _context_view(ctx: FrameContext, doc: bool) -> str | None:
    trc = ctx.get("__trc", {})
    if "frame" in trc and not doc:
        filename, lineno, funcname, lines = trc["frame"]
        head = f"{filename}:{lineno} {funcname}"
        return head if not lines else head + "\n" + "".join(lines).rstrip("\n")
    if "func" in trc:
        func = trc["func"]
        return inspect.getdoc(func) or "" if doc else source_of(func)
    return None


def _safe_view(sh, args: Args) -> None:
    target = args.words[0] if args.words else ""
    if not sh.in_osh or (target.startswith("/") and not target.startswith("/osh")):
        raise safety.refuse("view of files on the machine")


@command(
    "view",
    options=VIEW_OPTIONS,
    args=(Arg("class/method/function", optional=True),),
    redirects=(">",),
    aliases={"doc": "view -d -i", "show": "view -i"},
    outside_osh=True,
    safe_check=lambda sh, args: _safe_view(sh, args),
)
def view(sh, args: Args) -> None:
    """Show the source (or docstring) of an object, a trace context's code, or a file.

    Without a name: in a trace context frame, the captured source lines around that frame's
    line; in a call-trace context, the traced function; else the current directory's object.
    Objects that are not modules, classes or functions show their class.
    """
    target = args.words[0] if args.words else ""
    doc = args.flag("d")
    text = None
    if not sh.in_osh or (target.startswith("/") and not target.startswith("/osh")):
        if not target:
            raise UsageError("No object to display")
        path = sh.tree.expand(
            target if target.startswith("/") else paths.render(sh.cwd) + "/" + target
        )
        if not os.path.exists(path):
            raise PathError(f"File {target} not found")
        text = read_text(path, "view")  # bounded; devices and FIFOs refused
    elif not target or target == ".":
        here = sh.here().value
        if issubclass(type(here), FrameContext):  # type(): __class__ may raise
            text = _context_view(here, doc)
        if text is None:
            obj = _viewable(here)
            text = _doc_or_source(obj, doc)
    else:
        matches = sh.tree.glob(target, sh.cwd)
        if len(matches) != 1:
            raise UsageError(
                f"Cannot view multiple objects: {target}"
                if matches
                else f"No such object: {target}"
            )
        text = _doc_or_source(_viewable(matches[0].value), doc)
    if write_output(sh, args, text):
        return
    opener = sh.hooks.get("view")
    if not args.flag("i") and opener is not None:
        opener(text)
        return
    sh.out.write(text.rstrip("\n"), "text" if doc else "python")


def _doc_or_source(obj: Any, doc: bool) -> str:
    if doc:
        return inspect.getdoc(obj) or f"(no docstring for {safe_str(obj, 80)})"
    return source_of(obj)
