"""``otrace inject PID``: start otrace inside a running CPython that never imported it.

How (CPython 3.11 and later, through Debian's ``gdb``):

1. Checks that need no debugger: the process exists, is not this one, and ptrace may reach
   it (same user or root; ``kernel.yama.ptrace_scope``; no other tracer).
2. ``gdb -p PID`` (batch, no init files) runs a short gdb-Python script that reads the
   interpreter's ``Py_Version`` (no such symbol: not CPython 3.11+), maps one private page
   (``mmap``, no allocator lock involved), writes a one-line Python statement into it and
   calls ``Py_AddPendingCall(PyRun_SimpleString, page)``, then detaches.  Nothing of otrace
   runs while the program is stopped.
3. The interpreter runs pending calls on its **main thread**, between two bytecodes (its eval
   breaker) -- never in the middle of another thread's work, never inside a C call.  The
   statement imports otrace (from the target's own ``sys.path``, plus the directories the
   operator names with ``--path``) and calls :func:`otrace.bootstrap.start_injected`.  It
   never raises into the program: whatever happens is written as JSON to a status file that
   the injector waits for (bounded) and reports.

On Python 3.14+ (injector and target), ``sys.remote_exec`` replaces gdb for step 2.

The target keeps running in every case: every refusal happens before or instead of
scheduling, and the scheduled code reports failures instead of raising them.  If the main
thread runs no Python code for a while (blocked in a C call, an idle event loop), start-up
waits for it; the injector says so when its wait ends.

Thread safety: :func:`inject` may be called from any thread; it keeps no shared state.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from otrace.errors import OTraceError


class InjectError(OTraceError):
    """``otrace inject`` refused or failed (one line; the target is left running)."""


# -- checks without a debugger ------------------------------------------------------------------


def _status_fields(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        raise InjectError(f"no process {pid}") from None
    except OSError as exc:
        raise InjectError(f"cannot inspect process {pid}: {exc.strerror}") from None
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return fields


def _ptrace_scope() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip())
    except (OSError, ValueError):
        return None


def check_target(pid: int) -> dict[str, str]:
    """Refuse (InjectError) what ptrace cannot or must not reach; ``/proc/PID/status``."""
    if pid == os.getpid():
        raise InjectError("cannot inject into otrace inject itself")
    fields = _status_fields(pid)
    if fields.get("State", "").startswith("Z"):
        raise InjectError(f"process {pid} has exited (zombie)")
    tracer = int(fields.get("TracerPid", "0") or 0)
    if tracer:
        raise InjectError(
            f"ptrace not permitted: process {pid} is already traced by process {tracer} "
            "(a debugger or strace); detach it first"
        )
    uid = int(fields.get("Uid", "0").split()[1])  # effective uid
    euid = os.geteuid()
    if euid != 0 and euid != uid:
        raise InjectError(
            f"ptrace not permitted: process {pid} belongs to uid {uid}, you are uid {euid} "
            "(run as its user or as root)"
        )
    scope = _ptrace_scope()
    if scope == 3:
        raise InjectError("ptrace not permitted: kernel.yama.ptrace_scope is 3 (ptrace disabled)")
    if scope in (1, 2) and euid != 0:
        raise InjectError(
            f"ptrace not permitted: kernel.yama.ptrace_scope is {scope} (only "
            + ("ancestors or root" if scope == 1 else "root")
            + " may attach; sysctl kernel.yama.ptrace_scope=0, or run as root)"
        )
    return fields


def find_gdb(gdb: str | None = None) -> str:
    """The gdb to use: ``gdb`` (a path or a name) or ``$OTRACE_GDB`` or ``gdb`` on PATH."""
    name = gdb or os.environ.get("OTRACE_GDB") or "gdb"
    found = shutil.which(name)
    if found is None:
        raise InjectError(f"gdb is not installed ({name} not found; apt-get install gdb)")
    return found


# -- what runs in the target --------------------------------------------------------------------

_PAYLOAD = """
import json as _json, os as _os, sys as _sys
def _otrace_injected(status, paths, options):
    def write(result):
        tmp = status + ".tmp"
        with open(tmp, "w") as f:
            _json.dump(result, f)
        _os.replace(tmp, status)
    try:
        for p in reversed(paths):
            if p not in _sys.path:
                _sys.path.insert(0, p)
        try:
            import otrace
        except BaseException as exc:
            write({"ok": False, "stage": "import", "error": f"{type(exc).__name__}: {exc}",
                   "python": _sys.version.split()[0], "executable": _sys.executable})
            return
        try:
            from otrace.bootstrap import start_injected
        except BaseException as exc:
            write({"ok": False, "stage": "bootstrap", "error": f"{type(exc).__name__}: {exc}",
                   "otrace": getattr(otrace, "__version__", "?"),
                   "otrace_path": _os.path.dirname(otrace.__file__ or "")})
            return
        write({"ok": True, **start_injected(**options)})
    except BaseException as exc:
        try:
            write({"ok": False, "stage": "start", "error": f"{type(exc).__name__}: {exc}"})
        except BaseException:
            pass
_otrace_injected(STATUS, PATHS, OPTIONS)
"""


def injected_statement(status: str, paths: list[str], options: dict[str, Any]) -> bytes:
    """The one line ``PyRun_SimpleString`` runs in ``__main__``: it defines no name there
    (the work happens in a namespace of its own) and cannot raise."""
    code = (
        _PAYLOAD.replace("STATUS", json.dumps(status))
        .replace("PATHS", json.dumps(paths))
        .replace("OPTIONS", json.dumps(options))
    )
    b64 = base64.b64encode(code.encode()).decode()
    line = (
        "exec(__import__('base64').b64decode('" + b64 + "').decode(),"
        " {'__name__': '__otrace_inject__', '__builtins__': __import__('builtins')})"
    )
    return line.encode()


# gdb's own Python runs this (Debian's gdb is built with Python); PARAMS is a JSON literal.
_GDB_SCRIPT = r"""
import json
import gdb

P = json.loads(PARAMS)
out = {}
try:
    # symbols of the interpreter and libc only: the program is stopped while gdb reads them
    for lib in ("libpython", "libc[.-]"):
        gdb.execute("sharedlibrary " + lib, to_string=True)
    try:
        version = int(gdb.parse_and_eval("*(unsigned long *)&Py_Version"))
    except gdb.error:
        try:
            gdb.parse_and_eval("(long)&Py_AddPendingCall")
            out["error"] = "old-python"
        except gdb.error:
            out["error"] = "not-python"
        else:
            try:  # a static string, formatted by the interpreter; safe to call
                text = gdb.parse_and_eval("((const char *(*)(void))Py_GetVersion)()").string()
                out["version_text"] = text.split()[0]
            except gdb.error:
                pass
        version = None
    if version is not None:
        out["version"] = version
        if version < 0x030B0000:
            out["error"] = "old-python"
    if "error" not in out:
        inf = gdb.selected_inferior()
        for th in inf.threads():
            if th.ptid[1] == inf.pid:
                th.switch()  # the main thread makes the calls
                break
        code = bytes.fromhex(P["code"]) + b"\0"
        size = (len(code) + 4095) // 4096 * 4096
        # PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS
        page = int(gdb.parse_and_eval(
            "((long (*)(long, unsigned long, int, int, int, long))mmap)(0, %d, 3, 0x22, -1, 0)"
            % size))
        if page in (0, -1):
            out["error"] = "mmap"
        else:
            inf.write_memory(page, code)
            rc = int(gdb.parse_and_eval(
                "((int (*)(void *, void *))Py_AddPendingCall)((void *)PyRun_SimpleString,"
                " (void *)%d)" % page))
            out["scheduled"] = rc == 0
            out["rc"] = rc
except gdb.error as exc:
    out["error"] = "gdb"
    out["detail"] = str(exc)
with open(P["result"], "w") as f:
    json.dump(out, f)
gdb.execute("detach")
"""


def _version_text(hexversion: int) -> str:
    return f"{hexversion >> 24}.{(hexversion >> 16) & 0xFF}.{(hexversion >> 8) & 0xFF}"


def _schedule_with_gdb(pid: int, code: bytes, workdir: Path, gdb: str, timeout: float) -> None:
    result = workdir / "gdb-result.json"
    script = workdir / "inject-gdb.py"
    params = {"code": code.hex(), "result": str(result)}
    script.write_text(_GDB_SCRIPT.replace("PARAMS", repr(json.dumps(params))))
    cmd = [gdb, "-nx", "-nh", "-batch"]
    for setting in ("auto-solib-add off", "debuginfod enabled off", "auto-load off"):
        cmd += ["-iex", f"set {setting}"]
    cmd += ["-p", str(pid), "-x", str(script)]
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise InjectError(
            f"gdb did not finish within {timeout:.0f} s (the process was detached when gdb ended)"
        ) from None
    except OSError as exc:
        raise InjectError(f"cannot run {gdb}: {exc.strerror}") from None
    err = proc.stderr + proc.stdout
    if "ptrace: Operation not permitted" in err or "Could not attach to process" in err:
        raise InjectError(
            f"ptrace not permitted: gdb could not attach to process {pid} "
            "(a container without CAP_SYS_PTRACE, seccomp, or another tracer)"
        )
    if "No such process" in err and not result.exists():
        raise InjectError(f"no process {pid}")
    if not result.exists():
        last = " ".join(err.strip().splitlines()[-1:]) or f"exit status {proc.returncode}"
        raise InjectError(f"gdb could not run the injection script: {last}")
    out = json.loads(result.read_text())
    error = out.get("error")
    if error == "not-python":
        raise InjectError(f"process {pid} is not a CPython process (no Python symbols)")
    if error == "old-python":
        shown = (
            _version_text(out["version"])
            if "version" in out
            else out.get("version_text", "before 3.11")
        )
        raise InjectError(f"process {pid} runs CPython {shown}; otrace needs 3.11 or later")
    if error == "mmap":
        raise InjectError(f"could not map a page in process {pid}")
    if error:
        raise InjectError(f"gdb: {out.get('detail', error)}")
    if not out.get("scheduled"):
        raise InjectError(
            f"process {pid} refused the pending call (Py_AddPendingCall returned {out.get('rc')}:"
            " its queue of pending calls is full; try again)"
        )


def _schedule_with_remote_exec(pid: int, code: bytes, workdir: Path) -> bool:
    """Python 3.14+: ``sys.remote_exec``; False if it is not available for this target."""
    remote_exec = getattr(sys, "remote_exec", None)
    if remote_exec is None:
        return False
    script = workdir / "inject-remote.py"
    script.write_bytes(code + b"\n")
    script.chmod(0o644)
    try:
        remote_exec(pid, str(script))
    except Exception:
        return False  # a different Python version, say: gdb can still do it
    return True


# -- the whole injection ------------------------------------------------------------------------


def inject(
    pid: int,
    *,
    paths: list[str] | tuple[str, ...] = (),
    gdb: str | None = None,
    timeout: float = 10.0,
    gdb_timeout: float = 60.0,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Start otrace in process ``pid``; what :func:`otrace.bootstrap.start_injected` did.

    ``paths`` are put first on the target's ``sys.path`` (directories holding the ``otrace``
    package).  Waits up to ``timeout`` s for the target to run the start-up.  Raises
    :class:`InjectError` (one line) for every refusal and failure; the target runs on.
    """
    fields = check_target(pid)
    workdir = Path(tempfile.mkdtemp(prefix="otrace-inject-"))
    try:
        uid = int(fields.get("Uid", "0").split()[1])
        gid = int(fields.get("Gid", "0").split()[1])
        if os.geteuid() == 0 and uid != 0:
            os.chown(workdir, uid, gid)  # the target writes its status here
        status = workdir / "status.json"
        resolved = [os.path.abspath(p) for p in paths]
        code = injected_statement(str(status), resolved, options or {})
        if not _schedule_with_remote_exec(pid, code, workdir):
            _schedule_with_gdb(pid, code, workdir, find_gdb(gdb), gdb_timeout)
        deadline = time.monotonic() + timeout
        while not status.exists():
            if time.monotonic() > deadline:
                raise InjectError(
                    f"start-up is scheduled in process {pid}, but its main thread has run no "
                    f"Python code for {timeout:g} s (blocked in a call, or an idle event "
                    "loop): otrace starts when it does"
                )
            if not Path(f"/proc/{pid}").exists():
                raise InjectError(f"process {pid} ended before otrace started")
            time.sleep(0.02)
        result = json.loads(status.read_text())
    finally:
        # a start-up that runs later finds no directory and reports nowhere (it still starts)
        shutil.rmtree(workdir, ignore_errors=True)
    if not result.get("ok"):
        stage = result.get("stage")
        error = result.get("error", "?")
        if stage == "import":
            raise InjectError(
                f"otrace cannot be imported in process {pid} ({error}; Python "
                f"{result.get('python')} at {result.get('executable')}): install otrace in "
                "its environment, or name the directory that holds it with --path"
            )
        if stage == "bootstrap":
            raise InjectError(
                f"the otrace process {pid} imports ({result.get('otrace')} from "
                f"{result.get('otrace_path')}) cannot be started this way ({error}); "
                "name a newer one with --path"
            )
        raise InjectError(f"otrace did not start in process {pid}: {error}")
    return result


def describe(result: dict[str, Any]) -> str:
    """One line for the operator."""
    where = "its main thread" if result.get("main_thread") else f"thread {result.get('thread')}"
    loop = f", {result['event_loop']} event loop" if result.get("event_loop") else ""
    again = " (it was already running)" if result.get("again") else ""
    return (
        f"otrace {result.get('otrace')} started in process {result.get('pid')}{again}: "
        f"CPython {result.get('python')}, otrace from {result.get('otrace_path')}, "
        f"on {where}{loop}; started {result.get('started')}"
    )


def main(argv: list[str] | None = None) -> int:
    """``otrace inject [--path DIR]... [--gdb GDB] [--timeout S] PID``."""
    parser = argparse.ArgumentParser(
        prog="otrace inject",
        description="Start otrace inside a running CPython 3.11+ process that never "
        "imported it (through gdb; sys.remote_exec on 3.14+).",
    )
    parser.add_argument("pid", type=int, help="the process")
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory holding the otrace package, put first on the target's sys.path",
    )
    parser.add_argument("--gdb", help="the gdb to use (default: $OTRACE_GDB or gdb on PATH)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds to wait for the target to start otrace (default 10)",
    )
    opts = parser.parse_args(argv)
    try:
        result = inject(opts.pid, paths=opts.path, gdb=opts.gdb, timeout=opts.timeout)
    except InjectError as exc:
        sys.stderr.write(f"otrace inject: {exc}\n")
        return 2
    sys.stdout.write(describe(result) + "\n")
    return 0
