"""Instructions per trace id (``record.new_timestamp``), this tree against an older one.

    python benchmarks/trace_ids.py [REV]     (REV: default d44f09e, before the id's lock
                                              became call-free)

Each side runs 20,000 ids 1.3 us apart (most in one second, so the common-prefix loop runs)
in a child under valgrind's callgrind, only the loop counted.  Needs valgrind and git.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

N = 20_000


def child(path: str) -> None:
    spec = importlib.util.spec_from_file_location("record_under_test", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    new_timestamp, now = mod.new_timestamp, 1_790_000_000.0
    new_timestamp(now)
    print("READY", flush=True)
    sys.stdin.readline()
    for _ in range(N):
        now += 1.3e-6
        new_timestamp(now)
    print("DONE", flush=True)
    sys.stdin.readline()


def main() -> None:
    from _common import callgrind_per_iteration, source_at

    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing measured")
        return
    rev = sys.argv[1] if len(sys.argv) > 1 else "d44f09e"
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "record_old.py"
        old.write_text(source_at(rev, "otrace/contexts/record.py"))
        new = root / "otrace" / "contexts" / "record.py"
        for label, path in ((rev, old), ("this tree", new)):
            per = callgrind_per_iteration([__file__, "--child", str(path)], N, label)
            print(f"{label}: {per:,.0f} instructions per id")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2])
    else:
        main()
