"""A fork while another thread holds one of otrace's locks: the child is not stuck with it
(otrace.forking); the parent waits for each lock at most forking.WAIT."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import os, signal, sys, threading, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)   # 3.12+: fork with threads
from otrace.runtime import default
from otrace.tracing.api import trace
from otrace import forking

class Shop:
    def sell(self, n):
        return n

rt = default()
trace(Shop.sell, condition="all")
lock = eval(sys.argv[1])
held, done = threading.Event(), threading.Event()

def hold():
    with lock:
        held.set()
        done.wait(30)

threading.Thread(target=hold, daemon=True).start()
held.wait(10)
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    signal.alarm(10)                     # a stuck child dies instead of hanging the test
    Shop().sell(7)                       # traced: tracer, spec, recorder, store, events
    rt.params.set("trace_active", True)
    with rt.tracer.lock, rt.holds._lock:
        pass
    assert rt.store.newest["n"] == 7    # the child recorded it
    print(f"child ok forks={forking.FORKS}", flush=True)
    os._exit(0)
waited = time.monotonic() - t0
done.set()
_, status = os.waitpid(pid, 0)
print(f"parent waited {waited:.2f} child status {status}", flush=True)
"""

LOCKS = [
    "rt.store._lock",
    "rt.tracer.lock",
    "rt.events._lock",
    "rt.params._lock",
    "rt.holds._lock",
    "rt.patches.lock",
    "rt.persistence.lock",
    "next(iter(rt.tracer.registry.values()))._lock",
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("lock", LOCKS)
def test_a_lock_held_by_another_thread_at_fork_is_free_in_the_child(lock, tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", CHILD, lock],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "child ok forks=1" in out.stdout, out.stdout + out.stderr
    assert "child status 0" in out.stdout, out.stdout + out.stderr
    waited = float(out.stdout.split("parent waited ")[1].split()[0])
    assert waited < 5, waited  # bounded: forking.WAIT per held lock
