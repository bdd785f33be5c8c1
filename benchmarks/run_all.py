"""Run every benchmark, one after the other, print their tables and one summary table.

    python benchmarks/run_all.py [--quick] [--python PATH]... [--only SCRIPT,...]

Every figure is printed with its target and the machine (CPU model, cores, Python version,
load average at the start and the end: the figures are ratios measured side by side, but a
busy machine still moves them).  Full run: about 15 minutes plus Tornado's suite (six runs
of it, about 30 s each on an idle machine); ``--quick``: about 8 minutes.  Figures 1, 5, 6
and 7 need ``wrk`` (``apt-get install -y wrk``), figure 4b ``valgrind``; figure 3's
comparison needs ``pip install hunter`` (benchmark environment only).  ``trace_overhead.py`` also runs under every Python
3.12/3.13 found in ``~/.pyenv/versions`` (or ``--python PATH``, repeatable).
``round_one.py`` (in a git checkout) measures the context figures beside round one's code on
this machine, which is what the issue's microsecond targets were set against.

The summary
-----------
Each script prints, besides its tables, one line per figure for this summary::

    RESULT <figure-id> <value> <op> <target> <unit>

e.g. ``RESULT 4a-exception-context-us 38.2 <= 40 us``: ``<figure-id>`` has no blanks and
starts with the figure's number in docs/performance.rst; ``<op>`` is ``<=`` or ``>=`` (met
when ``value op target``), or ``--`` with target ``--`` for a figure without a target.
(``benchmarks/_common.py``: ``result()`` prints one.)  ``DATA {json}`` lines carry more
detail for other tools.  run_all collects the RESULT lines of every script and ends with
one table, ``figure | target | result | met?``; a figure of issue 19 that no script
reported (the script failed, or was skipped) is listed as ``not run``.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": str(HERE.parent)}
sys.path.insert(0, str(HERE))

from _common import machine  # noqa: E402

# Issue 19's figures: each must appear in the summary (prefixes of the RESULT ids)
ISSUE_19 = (
    "2-",  # non-matching traced call, exceptions only (per Python)
    "3-",  # untraced code while others are traced
    "4",  # context recording (recording.py)
    "pickle",  # pickle_file (pickle_store.py)
    "5-holds-others-rps-ratio",
    "5-holds-otrace-kib-per-hold",
    "5-holds-resume-all-answered-ms",
    "5-holds-resume-all-otrace-share-ms",
    "6-shell-ls-p99-load-ms",
)


class Result:
    def __init__(self, script: str, words: list[str]) -> None:
        self.script = script
        self.figure, value, self.op, self.target, self.unit = words
        self.value = float(value)

    def met(self) -> str:
        if self.op == "--":
            return ""
        target = float(self.target)
        ok = self.value <= target if self.op == "<=" else self.value >= target
        return "yes" if ok else "NO"

    def row(self) -> tuple[str, str, str, str]:
        target = "" if self.op == "--" else f"{self.op} {self.target} {self.unit}"
        return (self.figure, target, f"{self.value:.4g} {self.unit}", self.met())


def parse(line: str, script: str) -> Result | None:
    words = line.split()
    if len(words) != 6 or words[0] != "RESULT":
        return None
    try:
        return Result(script, words[1:])
    except ValueError:
        return None


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def run(python: str, script: str, *args: str, results: list[Result]) -> None:
    """Run one script, echoing its output and keeping its RESULT lines."""
    t0 = time.monotonic()
    print(f"\n##### {Path(python).name} {script} {' '.join(args)} (load {load()})", flush=True)
    proc = subprocess.Popen(
        [python, str(HERE / script), *args],
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line, end="", flush=True)
        got = parse(line, script)
        if got is not None:
            results.append(got)
    code = proc.wait()
    print(f"##### {script}: exit {code}, {time.monotonic() - t0:.0f} s", flush=True)


def summary(results: list[Result], start_load: str) -> None:
    rows = [r.row() for r in results]
    for prefix in ISSUE_19:
        if not any(r.figure.startswith(prefix) for r in results):
            rows.append((prefix.rstrip("-") + "...", "(issue 19)", "not run", "NO"))
    header = ("figure", "target", "result", "met?")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    print(f"\n===== Summary ({machine()} at the end; {start_load} at the start)")
    for row in (header, tuple("-" * w for w in widths), *rows):
        print(" | ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False)).rstrip())
    missed = sum(1 for row in rows if row[3] == "NO")
    print(f"{len(rows)} figures, {missed} with a target not met (or not run)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--python", action="append", default=[])
    parser.add_argument("--only", default="", help="comma-separated script names to run")
    opts = parser.parse_args()
    flag = ["--quick"] if opts.quick else []
    only = {s if s.endswith(".py") else s + ".py" for s in opts.only.split(",") if s}
    start_load = load()
    print(machine(), flush=True)
    t0 = time.monotonic()
    results: list[Result] = []

    def step(script: str, *args: str, python: str = sys.executable) -> None:
        if not only or script in only:
            run(python, script, *args, results=results)

    others = opts.python or sorted(
        p
        for v in ("3.12", "3.13")
        for p in glob.glob(os.path.expanduser(f"~/.pyenv/versions/{v}.*/bin/python"))[-1:]
    )
    step("trace_overhead.py", *flag)
    for python in others:
        step("trace_overhead.py", *flag, python=python)
    step("recording.py", *flag)
    if (HERE.parent / ".git").exists():  # (round one's tree comes from git archive)
        step("round_one.py", *flag)
    if shutil.which("valgrind"):
        step("instructions.py", *flag)
    step("pickle_store.py", "5000" if opts.quick else "50000")
    if shutil.which("wrk"):
        step("holds.py", *flag)
        step("web.py", *flag)
    else:
        print("\n(wrk not found: figures 1, 5, 6, 7 skipped; apt-get install -y wrk)")
    step("requests_cost.py", *flag)
    step("shell_input.py", *flag)
    step("stalls.py", *flag)
    step("service.py", *flag)
    if glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        step("store_backends.py", *flag)
    else:
        print(
            "\n(PostgreSQL server not found: store_backends.py skipped; apt-get install postgresql)"
        )
    step("fleet.py", *flag)
    # Tornado's own suite with Tornado traced (issue 20): minutes per mode
    step("tornado_suite.py", *(["--quick", "--modes", "exceptions"] if opts.quick else []))
    print(f"\nall benchmarks: {time.monotonic() - t0:.0f} s")
    summary(results, start_load)


if __name__ == "__main__":
    main()
