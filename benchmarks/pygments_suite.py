"""Pygments' own test suite (from its sdist) with Pygments traced (issue 20).

    python benchmarks/pygments_suite.py SDIST_DIR [MODE ...]

``SDIST_DIR`` is an unpacked Pygments sdist of the installed version (``pip download
pygments==X --no-binary :all: --no-deps``, then ``tar xzf``).  For each mode (default: plain
off exceptions nomatch; see tornado_suite.py) the suite runs in a subprocess, from the sdist's
directory, after every function and method of :data:`MODULES` is traced; it prints each run's
result and its wall-time ratio to ``plain``.  ``tests/contrast`` is left out (it needs
``wcag-contrast-ratio``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

MODULES = (
    "pygments",
    "pygments.lexer",
    "pygments.formatter",
    "pygments.filter",
    "pygments.filters",
    "pygments.util",
    "pygments.style",
    "pygments.regexopt",
    "pygments.token",
    "pygments.formatters.html",
    "pygments.lexers.python",
    "pygments.cmdline",
)
CONDITIONS = {"off": "", "exceptions": "", "nomatch": "text==otrace-never", "call": "call"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(mode: str) -> None:
    """In the sdist's directory: trace, then run its suite with pytest; exit with its status."""
    import importlib

    import pytest

    import otrace
    from otrace.runtime import default

    rt = default()
    wrapped = 0
    if mode != "plain":
        for name in MODULES:
            spec = otrace.trace(importlib.import_module(name), condition=CONDITIONS[mode])
            wrapped += sum("traced with a wrapper" in w for w in spec.warnings)
        if mode == "off":
            rt.params.set("trace_active", False)
    status = pytest.main(["tests", "-q", "-p", "no:cacheprovider", "--ignore=tests/contrast"])
    report = {
        "mode": mode,
        "traced": len(rt.tracer.sites),
        "wrapped": wrapped,
        "contexts": len(rt.store.all),
        "status": int(status),
    }
    print("otrace-suite " + json.dumps(report), flush=True)
    sys.exit(int(status))


def run_child(sdist: str, mode: str, timeout: float = 1800.0) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--run", mode],
        env=env,
        cwd=sdist,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    report: dict = {}
    for line in done.stdout.splitlines():
        if line.startswith("otrace-suite "):
            report = json.loads(line[len("otrace-suite ") :])
    summary = [line for line in done.stdout.splitlines() if " passed" in line or " failed" in line]
    return {
        "returncode": done.returncode,
        "wall": time.perf_counter() - start,
        "report": report,
        "summary": summary[-1:] or [done.stdout[-500:]],
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--run":
        run(sys.argv[2])
        return
    if len(sys.argv) < 2 or not os.path.isdir(os.path.join(sys.argv[1], "tests")):
        sys.exit(__doc__)
    sdist, modes = sys.argv[1], sys.argv[2:] or ["plain", "off", "exceptions", "nomatch"]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import machine

    print(machine())
    base = None
    for mode in modes:
        got = run_child(sdist, mode)
        base = got["wall"] if mode == "plain" else base
        ratio = f"{got['wall'] / base:.2f}" if base else "--"
        print(
            f"  {mode:10s} exit {got['returncode']}  {got['wall']:.1f} s (x plain {ratio})  "
            f"{got['report'].get('traced', '?')} functions traced "
            f"({got['report'].get('wrapped', '?')} wrapped)  {' '.join(got['summary'])}"
        )


if __name__ == "__main__":
    main()
