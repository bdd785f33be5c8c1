"""What filing one context in the store costs, in machine instructions (callgrind).

    python benchmarks/store_add.py

A loop of ``ContextStore.add`` on a full ``recent`` (``max_recent`` 200: each add also
evicts the oldest), counted by valgrind's callgrind as in ``instructions.py`` -- the store's
part of recording, alone, so a change to its lock handling shows without the rest of a
traced call around it.  Needs valgrind; without it the script says so and exits 0.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from _common import callgrind_per_iteration, emit, machine, result

N = 2000


def child(n: int) -> None:
    from otrace.contexts.record import TraceContext
    from otrace.contexts.store import ContextStore
    from otrace.params import Params

    params = Params()
    params.set("max_recent", 200)
    store = ContextStore(params)
    for i in range(300):
        store.add(TraceContext("traces", "f", f"w{i}", {}, {}))
    ctxs = [TraceContext("traces", "f", f"n{i}", {}, {}) for i in range(n)]
    add = store.add
    print("READY", flush=True)
    sys.stdin.readline()
    for ctx in ctxs:
        add(ctx)
    print("DONE", flush=True)
    sys.stdin.readline()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(int(sys.argv[2]))
        return
    print(machine())
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("store_add.py: valgrind not found (apt-get install -y valgrind); skipped")
        return
    per_add = callgrind_per_iteration([str(Path(__file__)), "--child", str(N)], N, "store add")
    emit("store-add", instructions=per_add)
    result("store-add-instructions", per_add, "--", "--", "instr")


if __name__ == "__main__":
    main()
