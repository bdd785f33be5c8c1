"""Figure 4c: the context figures beside round one's code, on this machine, in one run.

    python benchmarks/round_one.py [--quick] [--rounds N]

Issue 19 states its context targets in microseconds, against figures round one's code gave
on the machine it was filed on: an exception context of a 20-frame stack 108 us, a call
context 34 us (targets 40 and 15), ``pickle_file`` 853 us per exception in a tight loop.
Microseconds move with the machine (this project's runs have seen the same code 4x apart on
two VMs of one name), so this script measures both codes here, side by side: round one's
tree (commit ``ROUND_ONE``, extracted with ``git archive`` into a temporary directory) runs
its own ``benchmarks/recording.py``, the working tree runs today's, in alternating rounds,
same Python.  Per case it prints both, their ratio, and today's figure *scaled to the
filing machine* -- today's microseconds times (the filing figure / round one's here) --
which is what the issue's target is compared with.  Wall time per context, the measure both
scripts print (today's also prints the traced thread's CPU; see ``recording.py``).  Needs
a git checkout (``git archive``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, machine, result, table

ROUND_ONE = "f5979fd"  # main when round two began (the "current main")
# case: (round one's figure when the issue was filed, the target, the RESULT id)
CASES = {
    "exception: shallow": (108.0, 40.0, "4c-exception-context-scaled-us"),
    "call: shallow": (34.0, 15.0, "4c-call-context-scaled-us"),
    "exception: shallow, pickle_file": (853.0, None, "4c-exception-pickle-file-scaled-us"),
}


def extract(rev: str, into: Path) -> Path:
    """Round one's tree at ``rev`` under ``into``; returns its root."""
    tree = into / "tree"
    tree.mkdir()
    archive = subprocess.Popen(["git", "archive", rev], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, check=True)
    if archive.wait():
        raise SystemExit(f"git archive {rev} failed (round_one.py needs a git checkout)")
    return tree


def figures(tree: Path, quick: bool) -> dict[str, float]:
    """Wall microseconds per context of each case, from ``tree``'s own recording.py."""
    cmd = [sys.executable, str(tree / "benchmarks" / "recording.py")] + (["--quick"] * quick)
    proc = subprocess.run(
        cmd,
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode:
        raise SystemExit(f"{tree}: recording.py failed:\n{proc.stderr[-2000:]}")
    out: dict[str, float] = {}
    for line in proc.stdout.splitlines():
        head, _, rest = line.partition(" ")
        if head in ("RESULT", "DATA") and rest.startswith("{"):  # (round one: RESULT {json})
            data = json.loads(rest)
            if data.get("figure") == "recording" and data.get("case") in CASES:
                out[data["case"]] = data["us_per_context"]
    missing = set(CASES) - set(out)
    if missing:
        raise SystemExit(f"{tree}: recording.py printed no figure for {sorted(missing)}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    print(machine())
    runs: dict[str, dict[str, list[float]]] = {"round one": {}, "now": {}}
    with tempfile.TemporaryDirectory(prefix="otrace-round-one-") as tmp:
        old = extract(ROUND_ONE, Path(tmp))
        for _ in range(opts.rounds):
            for name, tree in (("round one", old), ("now", ROOT)):
                for case, us in figures(tree, opts.quick).items():
                    runs[name].setdefault(case, []).append(us)
    rows = []
    for case, (filed, target, figure) in CASES.items():
        then = statistics.median(runs["round one"][case])
        now = statistics.median(runs["now"][case])
        scaled = now * filed / then
        rows.append(
            (
                case,
                f"{then:.1f}",
                f"{now:.1f}",
                f"{now / then:.3f}",
                f"{filed:.0f}",
                f"{scaled:.1f}",
                f"<= {target:.0f}" if target is not None else "--",
            )
        )
        result(figure, scaled, "<=" if target else "--", target if target else "--", "us")
    table(
        f"4c. Contexts beside round one's code ({ROUND_ONE}), wall us per context, "
        f"medians of {opts.rounds} alternating runs",
        rows,
        (
            "case",
            "round one here",
            "now here",
            "now / round one",
            "round one, filed",
            "now, scaled to filing",
            "target",
        ),
    )


if __name__ == "__main__":
    main()
