"""One operator's shell: where they are, what they typed, and what comes back.

A :class:`Session` turns an input line into a :class:`~otrace.shell.output.Result`:

1. a pending multi-line Python statement takes the line as its next line;
2. ``!code`` is ``exec code``; otherwise the line is split with shell rules, aliases are
   expanded, and a first word that is not a command makes the whole line a ``pr``
   expression;
3. outside ``/osh`` only the commands declared ``outside_osh`` run; anything else is a unix
   command in that directory;
4. ``cd``-family commands may chain one more command with ``;`` (which runs only if the
   ``cd`` worked).

Errors the operator caused (:class:`~otrace.errors.OTraceError`) are one line; any other
exception is shown with its traceback, and the session carries on.

Thread safety: a session belongs to one thread (the console's).  :meth:`Session.execute`
takes the session's ``lock``, so another thread that must run a line in it (``otrace -f``
opening the post-mortem context) waits for the line in progress instead of racing it.  Its
state (cwd, stacks, aliases) is private; the program's objects it looks at are shared, and
it reads them as they are.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import threading
import traceback
import weakref
from collections.abc import Callable
from typing import Any

from otrace.contexts import ContextStore
from otrace.contexts.capture import module_globals
from otrace.contexts.record import FrameContext
from otrace.errors import OTraceError, ParamError, PathError, UsageError
from otrace.params import Params
from otrace.runtime import Runtime, default
from otrace.shell import evaluate, safety
from otrace.shell.output import Result
from otrace.shell.redirect import read_text
from otrace.shell.registry import REGISTRY, Args, lookup, parse
from otrace.vfs import Resolved, Tree, as_dir, paths
from otrace.vfs.nodes import DirNamespace
from otrace.vfs.paths import Parts

GLOBALS: Parts = ("osh", "globals")
CONTEXT_TREES = ("recent", "saved")
CD_FAMILY = frozenset({"cd", "cdls", "pushd", "popd", "swapd"})

BUILTIN_ALIASES: dict[str, list[str]] = {
    "cde": ["cd", ":"],
    "cdt": ["cd", "__trc"],
    "up": ["cd", "__up"],
    "dn": ["cd", "__down"],
    "uv": ["cd", "__up", ";", "view", "-i"],
    "dv": ["cd", "__down", ";", "view", "-i"],
    "doc": ["view", "-d", "-i"],
    "show": ["view", "-i"],
    "interrupt": ["exec", "import os, signal; os.kill(os.getpid(), signal.SIGINT)"],
}


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
        }
        self.mounts.update(mounts or {})
        self.tree = Tree(self.mounts, work_dir=work_dir, newest=self.newest_path)
        self.tree.pure = lambda: bool(self.params.safe_mode)  # safe mode: pure views
        self.cwd: Parts = GLOBALS
        self.dirstack: list[Parts] = []
        self.aliases: dict[str, list[str]] = {k: list(v) for k, v in BUILTIN_ALIASES.items()}
        self.width = 80
        self.runner: Callable[[Callable[..., Any], list[str]], None] | None = None
        self.hooks: dict[str, Any] = {}  # front-end services (editor, ...)
        self.out = Result()  # where the running command writes (set per command)
        self._pending: list[str] = []
        self._source_depth = 0
        self.lock = threading.RLock()  # one line at a time (see the module docstring)
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
        return value if isinstance(value, FrameContext) else None

    def prompt(self) -> str:
        """The prompt for the cwd: ``globals> ``, ``Cart..04-40-49> ``, ``osh..Cart> ``."""
        if self._pending or "collect_line" in self.hooks:
            return "... "
        prefix = "BRK:" if any(c.kind == "breaks" for c in self.runtime.holds.pending()) else ""
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
            if isinstance(value, FrameContext):
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
        """Run one input line and return what it produced (under the session's lock)."""
        result = Result()
        try:
            with self.lock:
                self._line(line, result)
        except OTraceError as exc:
            result.error(str(exc))
        except Exception as exc:  # a bug in a command: show it, keep the shell alive
            result.error(
                "otrace internal error (please report):\n"
                + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
            )
        return result

    def _line(self, line: str, result: Result) -> None:
        collect = self.hooks.get("collect_line")  # a command reading following lines (here-doc)
        if collect is not None:
            collect(line, result)
            return
        if self._pending:
            self._continue_code(line, result)
            return
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return
        if stripped.startswith("!"):
            self.run_command("exec", stripped[1:].strip(), None, result)
            return
        try:
            words = shlex.split(stripped)
        except ValueError as exc:
            if self.in_osh:  # maybe Python with an odd quote: let pr say what is wrong
                self.run_command("pr", stripped, None, result)
                return
            raise UsageError(f"Cannot split line: {exc}") from None
        if not words:
            return
        first = words[0]
        if first in self.aliases:
            words = self.expand_alias(first, words[1:])
            stripped = " ".join(words)
            first = words[0]
        if first in CD_FAMILY and ";" in stripped:
            self._chain(stripped, result)
            return
        if (
            self.cwd[:2] == ("osh", "web")
            and len(self.cwd) > 2
            and first not in _WEB_LOCAL
            and "_web" in REGISTRY
        ):
            self.run_command("_web", stripped, None, result)  # JavaScript for a browser
            return
        if first not in REGISTRY:
            if not self.in_osh:
                self.run_unix(stripped, result)
            else:
                self.run_command("pr", stripped, None, result)
            return
        cmd = REGISTRY[first]
        if not self.in_osh and not cmd.outside_osh:
            self.run_unix(stripped, result)
            return
        rest = (
            stripped[len(first) :].strip() if stripped.startswith(first) else shlex.join(words[1:])
        )
        self.run_command(first, rest, words[1:], result)

    def _chain(self, text: str, result: Result) -> None:
        head, _, tail = text.partition(";")
        before = len(result.chunks)
        self._line(head, result)
        if any(s == "err" for s, _, _ in result.chunks[before:]):
            return  # the cd failed: do not run the rest where the operator did not mean
        if tail.strip():
            self._line(tail, result)

    def run_command(self, name: str, rest: str, words: list[str] | None, result: Result) -> None:
        """Parse and run command ``name`` with ``rest`` (raw text) / ``words`` (split)."""
        cmd = lookup(name)
        if cmd.raw:
            args = Args(raw=rest, words=words or [])
        else:
            args = parse(cmd, shlex.split(rest) if words is None else words)
            args.raw = rest
        safety.check(self, cmd, args)  # safe mode: the one capability check
        previous, self.out = self.out, result
        try:
            cmd.func(self, args)
        finally:
            self.out = previous

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
            with self.exec_guard():
                value = evaluate.execute(code, self.eval_globals(), self.namespace())
        except OTraceError:
            raise
        except BaseException as exc:  # noqa: B036 - typed code may raise SystemExit too
            result.error(evaluate.format_exception(exc))
            return
        if value is not None:
            from otrace.contexts import safe_repr

            result.write(safe_repr(value, 100_000))

    def exec_guard(self):
        """With ``exec_lock``, evaluation holds the tracing lock (no trace bookkeeping meanwhile)."""
        if self.params.exec_lock:
            return self.runtime.tracer.lock
        return contextlib.nullcontext()

    @property
    def pending_code(self) -> bool:
        return bool(self._pending)

    def cancel_code(self) -> None:
        self._pending = []

    # -- unix commands ------------------------------------------------------------------
    def run_unix(self, line: str, result: Result) -> None:
        """Run ``line`` with bash in the current (real) directory, with a timeout."""
        safety.check_unix(self, line)
        cwd = paths.render(self.cwd)
        env = dict(os.environ, **self.add_env)
        if self.params.osh_bin:
            env["PATH"] = os.path.abspath(self.params.osh_bin) + os.pathsep + env.get("PATH", "")
        try:
            proc = subprocess.run(
                ["/bin/bash", "-c", line],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=self.params.shell_timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise OTraceError(
                f"Timed out command execution '{line}' (shell_timeout {self.params.shell_timeout:g}s)"
            ) from None
        except OSError as exc:
            raise OTraceError(f"Cannot run '{line}': {exc}") from None
        if proc.stdout:
            result.write(proc.stdout.rstrip("\n"))
        if proc.stderr:
            result.error(proc.stderr.rstrip("\n"))

    # -- files of commands --------------------------------------------------------------
    def source(self, path: str, result: Result, echo: bool = True) -> None:
        """Run the commands of a file, in place; errors name the file and line."""
        if self._source_depth > 20:
            raise OTraceError(f"source: nested too deeply at {path}")
        if not os.path.exists(path):
            raise OTraceError(f"Input file {path} not found")
        lines = read_text(path, "source").splitlines()  # bounded; devices refused
        self._source_depth += 1
        try:
            for number, line in enumerate(lines, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                silent = line.startswith("noecho ")
                if silent:
                    line = line[len("noecho ") :]
                if echo and not silent:
                    result.write(self.prompt() + line)
                sub = self.execute(line)
                for stream, text, kind in sub.chunks:
                    if stream == "err":
                        result.error(f"{path}:{number}: {text}")
                    else:
                        result.chunks.append((stream, text, kind))
                if sub.action == "quit":
                    result.action = "quit"
                    return
        finally:
            self._source_depth -= 1


_WEB_LOCAL = frozenset(
    {"ls", "cd", "cdls", "pushd", "popd", "swapd", "pwd", "help", "alias", "quit", "repeat", "set"}
)


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
