"""``otrace inject``, step 2: scheduling the statement in the target -- through gdb (a pending
call made while the process is stopped, then detached), or ``sys.remote_exec`` on 3.14+.

Any thread; no shared state.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from otrace.inject import InjectError

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


def schedule_with_gdb(pid: int, code: bytes, workdir: Path, gdb: str, timeout: float) -> None:
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


def schedule_with_remote_exec(pid: int, code: bytes, workdir: Path) -> bool:
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
