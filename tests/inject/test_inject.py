"""otrace inject: start otrace in running programs that never imported it, through gdb --
a plain loop (on every CPython 3.11+ pyenv has), a Tornado server under load -- and every
refusal, with the target still running afterwards."""

from __future__ import annotations

import glob
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb not installed (.ci/setup)"),
]


class Target:
    """A target program in a subprocess; its stdout lines on a queue."""

    def __init__(self, argv: list[str], tmp_path: Path, **kw) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OTRACE_STORE")}
        env.update(HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path), TMPDIR=str(tmp_path))
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=tmp_path,  # not the worktree: the target cannot import otrace by accident
            env=env,
            **kw,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = 30.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} from the target; saw {self.seen[-10:]}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            m = re.search(pattern, line)
            if m:
                return m

    def still_running(self) -> None:
        """It goes on ticking."""
        self.expect(r"^tick \d+")
        self.expect(r"^tick \d+")
        assert self.proc.poll() is None

    def close(self) -> str:
        self.proc.kill()
        _out, err = self.proc.communicate(timeout=30)
        return err


@pytest.fixture
def targets(tmp_path):
    started: list[Target] = []

    def start(argv: list[str], **kw) -> Target:
        t = Target(argv, tmp_path, **kw)
        started.append(t)
        return t

    yield start
    for t in started:
        t.close()


def inject(pid: int, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "otrace", "inject", *args, str(pid)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pythons() -> list[str]:
    """This Python and the other CPython 3.11+ builds pyenv has."""
    found = [sys.executable]
    for v in ("3.12", "3.13"):
        found += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{v}.*/bin/python")))[-1:]
    return found


# -- it works -----------------------------------------------------------------------------------


@pytest.mark.parametrize("python", pythons(), ids=lambda p: p.split("/")[-3])
def test_inject_into_a_plain_loop(targets, python):
    t = targets([python, str(HERE / "target_loop.py")])
    t.expect(r"^ready otrace-imported=False$")
    t.expect(r"^tick")
    res = inject(t.proc.pid, "--path", str(ROOT))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"otrace 0.40.0 started in process {t.proc.pid}: CPython")
    assert f"otrace from {ROOT / 'otrace'}, on its main thread; started " in res.stdout
    # the target's own view: otrace is there, started on the main thread, __main__ untouched
    facts = json.loads(t.expect(r"^INJECTED (.*)$").group(1))
    assert facts["started"]["thread"] == "MainThread" and facts["started"]["main_thread"]
    assert facts["started"]["pid"] == t.proc.pid
    names = ["busy", "json", "pause", "seen", "started", "sys", "threading", "tick", "time"]
    assert facts["main_names"] == names  # the injected line defined nothing in __main__
    t.still_running()
    # a second injection finds it running
    again = inject(t.proc.pid, "--path", str(ROOT))
    assert again.returncode == 0 and "(it was already running)" in again.stdout, again.stderr
    t.still_running()


def test_inject_into_a_tornado_server_under_load(targets):
    t = targets([sys.executable, str(HERE / "target_tornado.py")])
    port = int(t.expect(r"^port (\d+) otrace-imported=False$").group(1))
    url = f"http://127.0.0.1:{port}/"
    results = {"ok": 0, "failed": [], "otrace": 0}
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(url, timeout=30) as resp:
                    body = json.loads(resp.read())
                    assert resp.status == 200 and body["ok"]
                    results["ok"] += 1
                    results["otrace"] += body["otrace"]
            except Exception as exc:
                results["failed"].append(repr(exc))

    clients = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for c in clients:
        c.start()
    deadline = time.monotonic() + 30
    while results["ok"] < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    before = results["ok"]
    assert before >= 50, results
    res = inject(t.proc.pid, "--path", str(ROOT))
    assert res.returncode == 0, res.stderr
    assert "on its main thread, tornado event loop" in res.stdout, res.stdout
    deadline = time.monotonic() + 30
    while results["otrace"] < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for c in clients:
        c.join(40)
    assert results["failed"] == [], results["failed"][:3]
    assert results["otrace"] >= 50 and results["ok"] > before + 50, results


def test_a_main_thread_that_runs_no_python_code_starts_otrace_later(targets):
    # the main thread sleeps 8 s at a time in one C call; another thread runs Python code
    t = targets([sys.executable, str(HERE / "target_loop.py"), "8"])
    t.expect(r"^ready")
    t.expect(r"^tick")  # just back from a pause
    res = inject(t.proc.pid, "--path", str(ROOT), "--timeout", "0.5")
    assert res.returncode == 2
    assert res.stderr.startswith(
        f"otrace inject: start-up is scheduled in process {t.proc.pid}, but its main thread "
        "has run no Python code for 0.5 s (blocked in a call, or an idle event loop): otrace "
        "starts when it does"
    ), res.stderr
    # when the main thread runs Python code again, otrace starts there -- not on the busy thread
    facts = json.loads(t.expect(r"^INJECTED (.*)$", timeout=30).group(1))
    assert facts["started"]["thread"] == "MainThread"


# -- refusals: one line, exit status 2, the target runs on --------------------------------------


def test_otrace_not_importable_in_the_target(targets):
    t = targets([sys.executable, "-S", str(HERE / "target_loop.py")])  # -S: no site-packages
    t.expect(r"^ready")
    res = inject(t.proc.pid)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith(
        f"otrace inject: otrace cannot be imported in process {t.proc.pid}"
    )
    assert "No module named 'otrace'" in res.stderr and "--path" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    t.still_running()


def test_not_a_python_process(targets):
    t = targets(["sleep", "300"])
    res = inject(t.proc.pid)
    assert (res.returncode, res.stderr.strip()) == (
        2,
        f"otrace inject: process {t.proc.pid} is not a CPython process (no Python symbols)",
    )
    assert t.proc.poll() is None


def test_python_older_than_3_11(targets):
    old = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10.*/bin/python")))
    if not old:
        pytest.skip("no CPython 3.10 here")
    t = targets([old[-1], str(HERE / "target_loop.py")])
    t.expect(r"^ready")
    res = inject(t.proc.pid, "--path", str(ROOT))
    assert res.returncode == 2
    assert re.fullmatch(
        rf"otrace inject: process {t.proc.pid} runs CPython 3\.10\.\d+; otrace needs 3\.11 or later",
        res.stderr.strip(),
    ), res.stderr
    t.still_running()


def test_gdb_missing_and_no_such_process(targets, tmp_path):
    t = targets([sys.executable, str(HERE / "target_loop.py")])
    t.expect(r"^ready")
    res = inject(t.proc.pid, "--gdb", str(tmp_path / "no-gdb"))
    assert res.returncode == 2
    assert "gdb is not installed" in res.stderr and "apt-get install gdb" in res.stderr
    t.still_running()
    gone = subprocess.Popen(["true"])
    gone.wait(10)
    res = inject(gone.pid)
    assert (res.returncode, res.stderr.strip()) == (2, f"otrace inject: no process {gone.pid}")


_SEIZE = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_SEIZE = 0x4206
if libc.ptrace(PTRACE_SEIZE, int(sys.argv[1]), 0, 0) != 0:
    print("seize failed", ctypes.get_errno(), flush=True)
    sys.exit(1)
print("seized", flush=True)
sys.stdin.read()   # traced until the test closes stdin; exiting detaches
"""


def test_ptrace_not_permitted(targets):
    t = targets([sys.executable, str(HERE / "target_loop.py")])
    t.expect(r"^ready")
    # another tracer holds the target (PTRACE_SEIZE does not stop it): ptrace is refused
    tracer = subprocess.Popen(
        [sys.executable, "-c", _SEIZE, str(t.proc.pid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert tracer.stdout.readline().strip() == "seized"
        res = inject(t.proc.pid, "--path", str(ROOT))
        assert res.returncode == 2
        assert res.stderr.startswith(
            f"otrace inject: ptrace not permitted: process {t.proc.pid} is already traced by "
            f"process {tracer.pid}"
        ), res.stderr
        t.still_running()
    finally:
        tracer.stdin.close()
        tracer.wait(30)
        tracer.stdout.close()
    # once the tracer is gone, injection works
    res = inject(t.proc.pid, "--path", str(ROOT))
    assert res.returncode == 0, res.stderr
    t.expect(r"^INJECTED")


def test_ptrace_refused_by_gdb_is_one_line(targets, monkeypatch):
    """A refusal that only gdb sees (seccomp, a container without CAP_SYS_PTRACE): simulated
    with a gdb that answers as gdb does there."""
    from otrace.inject import InjectError, injector

    t = targets([sys.executable, str(HERE / "target_loop.py")])
    t.expect(r"^ready")
    script = Path(os.environ.get("TMPDIR", "/tmp")) / f"fake-gdb-{os.getpid()}"
    script.write_text("#!/bin/sh\necho 'ptrace: Operation not permitted.' >&2\nexit 1\n")
    script.chmod(0o755)
    try:
        with pytest.raises(InjectError, match=r"^ptrace not permitted: gdb could not attach"):
            injector.inject(t.proc.pid, gdb=str(script), timeout=5)
    finally:
        script.unlink()
    t.still_running()
