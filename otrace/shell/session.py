"""One operator's shell: where they are, what they typed, and what comes back.

A :class:`Session` holds one operator's state (cwd, directory stack, aliases, pending
multi-line code, front-end hooks) and turns an input line into a
:class:`~otrace.shell.output.Result`:

1. a command collecting following lines (a here-doc) takes the line;
2. a pending multi-line Python statement takes the line as its next line;
3. otherwise :mod:`otrace.shell.dispatch` reads the line (the declared grammar of
   :mod:`otrace.shell.registry`) and runs it; unix commands are run by
   :mod:`otrace.shell.unix` and ``source`` files by :mod:`otrace.shell.source`.

Errors the operator caused (:class:`~otrace.errors.OTraceError`) are one line; any other
exception is shown with its traceback, and the session carries on.

Thread safety: a session is used from one thread at a time (the service runs its lines;
another thread goes through the service too, as ``otrace -f`` does to open the post-mortem
context).  Its state (cwd, stacks, aliases) is private; the program's objects it looks at
are shared, and it reads them as they are.
"""

from __future__ import annotations

import contextlib
import os
import traceback
import weakref
from collections.abc import Callable
from typing import Any

from otrace.contexts import ContextStore
from otrace.contexts.capture import module_globals
from otrace.contexts.record import FrameContext, TraceContext
from otrace.errors import OTraceError, ParamError, PathError
from otrace.params import Params
from otrace.runtime import Runtime, default
from otrace.shell import dispatch, evaluate, source, unix
from otrace.shell.output import Result
from otrace.shell.registry import builtin_aliases
from otrace.shell.tokens import check_line
from otrace.vfs import Resolved, Tree, as_dir, paths
from otrace.vfs.live import RequestsDir, TasksDir
from otrace.vfs.nodes import DirNamespace
from otrace.vfs.paths import Parts

GLOBALS: Parts = ("osh", "globals")
CONTEXT_TREES = ("recent", "saved")


class Session:
    """The state of one shell, and the interpreter of its input lines.

    :param globals_dict: mounted at ``/osh/globals``; the globals of every evaluation.
    :param locals_dict: mounted at ``/osh/locals``.
    :param mounts: extra ``/osh`` entries (``web``, ``db``, ``pickled``, ...).
    :param allow_unsafe: whether ``set safe_mode False`` is allowed.
    :param work_dir: what ``~~w`` means (default: the process's cwd).
    :param add_env: extra environment for unix commands.
    """

    def __init__(
        self,
        globals_dict: dict[str, Any] | None = None,
        locals_dict: dict[str, Any] | None = None,
        *,
        mounts: dict[str, Any] | None = None,
        allow_unsafe: bool = False,
        work_dir: str = "",
        add_env: dict[str, str] | None = None,
        store: ContextStore | None = None,
        params: Params | None = None,
        runtime: Runtime | None = None,
    ):
        # the runtime this session works on (default: the process's); store and params
        # default to the runtime's
        self.runtime = rt = runtime if runtime is not None else default()
        store = store if store is not None else rt.store
        params = params if params is not None else rt.params
        self.globals = globals_dict if globals_dict is not None else {}
        self.locals = locals_dict if locals_dict is not None else self.globals
        self.store = store
        self.params = params
        self.allow_unsafe = allow_unsafe
        self.add_env = dict(add_env or {})
        self.patches: dict[str, Any] = {}
        self.mounts: dict[str, Any] = {
            "globals": self.globals,
            "locals": self.locals,
            "recent": store.recent,
            "saved": store.saved,
            "all": store.all,
            "patches": self.patches,
            "pickled": {},
            "web": {},
            "db": {},
            "requests": RequestsDir(rt.requests),
            "tasks": TasksDir(rt.requests),
        }
        self.mounts.update(mounts or {})
        self.tree = Tree(self.mounts, work_dir=work_dir, newest=self.newest_path)
        self.tree.pure = lambda: bool(self.params.safe_mode)  # safe mode: pure views
        self.cwd: Parts = GLOBALS
        self.dirstack: list[Parts] = []
        self.aliases: dict[str, list[str]] = builtin_aliases()
        self.width = 80
        self.runner: Callable[[Callable[..., Any], list[str]], None] | None = None
        self.hooks: dict[str, Any] = {}  # front-end services (editor, ...)
        self.out = Result()  # where the running command writes (set per command)
        self._pending: list[str] = []
        self._source_depth = 0
        # weak, so a session that is dropped without close() stops guarding the parameters
        self._guard = _weak_guard(self)
        self.params.add_guard(self._guard)
        if not allow_unsafe and not self.params.safe_mode:
            self.params.set("safe_mode", True)

    def close(self) -> None:
        """Detach from process-wide state (the parameter guard)."""
        self.params.remove_guard(self._guard)

    def _guard_param(self, name: str, value: Any) -> None:
        if name == "safe_mode" and not value and not self.allow_unsafe:
            raise ParamError(
                "Switching to unsafe mode not permitted (the shell was created with allow_unsafe=False)"
            )

    # -- where we are -------------------------------------------------------------------
    @property
    def in_osh(self) -> bool:
        return self.cwd[:1] == ("osh",)

    def newest_path(self) -> Parts | None:
        ctx = self.store.newest
        if ctx is None:
            return None
        return ("osh", "recent", *ctx.path)

    def here(self) -> Resolved:
        """The current directory, resolved now (PathError if it went stale)."""
        try:
            return self.tree.resolve(self.cwd)
        except PathError:
            if self.cwd[:2] == ("osh", "requests") and len(self.cwd) > 2:
                rid = self.cwd[2]
                raise PathError(
                    f"Stale directory {paths.render(self.cwd)}: request {rid} has finished "
                    f"(see /osh/requests/done/{rid}); cd ~~g"
                ) from None
            raise PathError(
                f"Stale directory {paths.render(self.cwd)}: it is gone (an evicted or deleted "
                "context?); cd ~~ or cd ~~g"
            ) from None

    def resolve(self, text: str) -> Resolved:
        return self.tree.resolve_text(text, self.cwd)

    def context_root_parts(self, parts: Parts | None = None) -> Parts | None:
        """The path of the trace context ``parts`` (default: the cwd) lies in, if any."""
        parts = self.cwd if parts is None else parts
        if len(parts) >= 6 and parts[1] in CONTEXT_TREES:
            return parts[:6]
        if len(parts) >= 3 and parts[1] == "all":
            return parts[:3]
        if len(parts) >= 7 and parts[1] == "pickled" and parts[6] == ":":
            return parts[:7]
        return None

    def context_root(self) -> FrameContext | None:
        """The trace context whose directory tree holds the cwd, if any."""
        root = self.context_root_parts()
        if root is None:
            return None
        try:
            value = self.tree.resolve(root).value
        except PathError:
            return None
        return value if issubclass(type(value), FrameContext) else None

    def prompt(self) -> str:
        """The prompt for the cwd: ``globals> ``, ``Cart..04-40-49> ``, ``osh..Cart> ``."""
        if self._pending or "collect_line" in self.hooks:
            return "... "
        prefix = "BRK:" if self.runtime.holds.breaks_waiting() else ""
        parts = self.cwd
        if not parts:
            return prefix + "/> "
        if parts[0] != "osh" or len(parts) <= 2:
            return f"{prefix}{parts[-1]}> "
        root = self.context_root_parts()
        if root is not None and len(root) == 6 and parts == root:
            name, ts = parts[3].split(".")[0], parts[5].split("-", 1)[-1]
            return f"{prefix}{name}..{ts}> "
        if parts[-1] in ("__up", "__down"):
            try:
                frame = self.here().value
                return f"{prefix}osh..{frame['__trc'].get('funcname', parts[-1])}> "
            except (OTraceError, KeyError, TypeError):
                pass
        area = "web" if parts[1] == "web" else "osh"
        return f"{prefix}{area}..{parts[-1]}> "

    def default_dir(self) -> Parts:
        """Where ``cd`` with no argument goes."""
        root = self.context_root_parts()
        if root is not None:
            try:
                self.tree.resolve(root)
                return root
            except PathError:
                return GLOBALS  # the context is gone
        if self.in_osh:
            return GLOBALS
        return tuple(p for p in os.path.expanduser("~").split("/") if p)

    def namespace(self) -> DirNamespace:
        """The current directory as ``locals`` for evaluation."""
        here = self.here()
        return DirNamespace(as_dir(here.value), {"_otrace_value": here.value})

    def eval_globals(self) -> dict[str, Any]:
        """Globals for evaluation: inside a context, its frame's module globals if known."""
        ctx = None
        try:
            value = self.here().value
            if issubclass(type(value), FrameContext):  # type(): __class__ may raise
                ctx = value
        except OTraceError:
            pass
        if ctx is not None:
            live = self.cwd[1:2] != ("pickled",)  # a stored context's __main__ is not ours
            ns = module_globals(ctx["__trc"].get("module", "") or "", live)
            if ns is not None:
                return ns
        return self.globals

    # -- input lines --------------------------------------------------------------------
    def execute(self, line: str) -> Result:
        """Run one input line and return what it produced."""
        result = Result()
        try:
            self.run_line(line, result)
        except OTraceError as exc:
            result.error(str(exc))
        except Exception as exc:  # a bug in a command: show it, keep the shell alive
            result.error(
                "otrace internal error (please report):\n"
                + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
            )
        return result

    def run_line(self, line: str, result: Result) -> None:
        """Run one input line, writing to ``result``; errors propagate (see :meth:`execute`)."""
        check_line(line)
        collect = self.hooks.get("collect_line")  # a command reading following lines (here-doc)
        if collect is not None:
            collect(line, result)
            return
        if self._pending:
            self._continue_code(line, result)
            return
        dispatch.run(self, dispatch.read(self, line), result)

    def run_command(self, name: str, rest: str, words: list[str] | None, result: Result) -> None:
        """Parse and run command ``name`` with ``rest`` (raw text) / ``words`` (split)."""
        dispatch.run_command(self, name, rest, words, result)

    def expand_alias(self, name: str, args: list[str]) -> list[str]:
        """Expand an alias: ``\\*`` all args, ``\\**`` args as Python values, ``\\N`` one arg."""
        out: list[str] = []
        used = False
        for word in self.aliases[name]:
            new = word
            if "\\**" in new:
                new = new.replace("\\**", ", ".join(_pythonize(a) for a in args))
                used = True
            if "\\*" in new:
                new = new.replace("\\*", " ".join(args))
                used = True
            for i in range(len(args), 0, -1):
                if f"\\{i}" in new:
                    new = new.replace(f"\\{i}", args[i - 1])
                    used = True
            out.append(new)
        return out if used else out + args

    # -- Python code --------------------------------------------------------------------
    def start_code(self, code: str, result: Result) -> bool:
        """Begin a possibly multi-line statement; True if it needs more lines."""
        if evaluate.is_incomplete(code):
            self._pending = [code]
            result.incomplete = True
            return True
        return False

    def _continue_code(self, line: str, result: Result) -> None:
        self._pending.append(line)
        code = "\n".join(self._pending)
        if line.strip() and evaluate.is_incomplete(code):
            result.incomplete = True
            return
        self._pending = []
        self.run_code(code, result)

    def run_code(self, code: str, result: Result) -> None:
        try:
            if evaluate.is_async(code):
                coro = evaluate.execute_async(code, self.eval_globals(), self.namespace())
                value = self.run_await(coro)
            else:
                with self.exec_guard():
                    value = evaluate.execute(code, self.eval_globals(), self.namespace())
        except OTraceError:
            raise
        except BaseException as exc:  # noqa: B036 - typed code may raise SystemExit too
            result.error(evaluate.format_exception(exc))
            return
        if value is not None:
            from otrace.contexts import safe_repr

            result.write(safe_repr(value, 100_000, items=100, depth=6))  # as pr shows it

    def run_await(self, coro: Any) -> Any:
        """Run typed code that awaits as a task on the program's loop, bounded by
        ``await_timeout``: in a held frame on the held task's loop, else through the
        program's event-loop door."""
        loop = None
        ctx = self.context_root()
        if ctx is not None:
            live = self.runtime.holds.get(ctx.id) if isinstance(ctx, TraceContext) else None
            loop = getattr(live, "loop", None)
        return self.runtime.holds.run_coroutine(coro, self.params.await_timeout, loop)

    def exec_guard(self):
        """With ``exec_lock``, trace recording on other threads waits for the evaluation, at
        most briefly (:mod:`otrace.tracing.exec_hold`): program threads never wait for it."""
        if self.params.exec_lock:
            return self.runtime.tracer.exec_hold.hold()
        return contextlib.nullcontext()

    @property
    def pending_code(self) -> bool:
        return bool(self._pending)

    def cancel_code(self) -> None:
        self._pending = []

    # -- unix commands and files of commands -------------------------------------------
    def run_unix(self, line: str, result: Result) -> None:
        """Run ``line`` with bash in the current (real) directory, with a timeout."""
        unix.run_unix(self, line, result)

    def source(self, path: str, result: Result, echo: bool = True) -> None:
        """Run the commands of a file, in place; errors name the file and line."""
        source.run_file(self, path, result, echo)


def _weak_guard(session: Session) -> Callable[[str, Any], None]:
    ref = weakref.ref(session)

    def guard(name: str, value: Any) -> None:
        live = ref()
        if live is not None:
            live._guard_param(name, value)

    return guard


def _pythonize(arg: str) -> str:
    if arg.lstrip("+-").isdigit():
        return arg
    name, eq, value = arg.partition("=")
    if eq and name.isidentifier():
        return f"{name}={_pythonize(value)}"
    return repr(arg)
