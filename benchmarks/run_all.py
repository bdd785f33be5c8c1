"""Run every benchmark, one after the other, and print their tables.

    python benchmarks/run_all.py [--quick]

Every figure is printed with its target and the machine.  Full run: about 4 minutes plus
Tornado's suite (six runs of it, about 30 s each on an idle machine); ``--quick``: a few
minutes.  Figures 1, 5 and 6 need ``wrk``
(``apt-get install -y wrk``); figure 3's comparison needs ``pip install hunter`` (benchmark
environment only).  ``trace_overhead.py`` also runs under every Python 3.12/3.13 found in
``~/.pyenv/versions`` (or ``--python PATH``, repeatable).
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


def run(python: str, script: str, *args: str) -> None:
    t0 = time.monotonic()
    print(f"\n##### {Path(python).name} {script} {' '.join(args)}", flush=True)
    code = subprocess.run([python, str(HERE / script), *args], env=ENV).returncode
    print(f"##### {script}: exit {code}, {time.monotonic() - t0:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--python", action="append", default=[])
    opts = parser.parse_args()
    flag = ["--quick"] if opts.quick else []
    t0 = time.monotonic()
    others = opts.python or sorted(
        p
        for v in ("3.12", "3.13")
        for p in glob.glob(os.path.expanduser(f"~/.pyenv/versions/{v}.*/bin/python"))[-1:]
    )
    run(sys.executable, "trace_overhead.py", *flag)
    for python in others:
        run(python, "trace_overhead.py", *flag)
    run(sys.executable, "recording.py", *flag)
    if shutil.which("wrk"):
        run(sys.executable, "web.py", *flag)
    else:
        print("\n(wrk not found: figures 1, 5, 6 skipped; apt-get install -y wrk)")
    run(sys.executable, "requests_cost.py", *flag)
    run(sys.executable, "pickle_store.py", "5000" if opts.quick else "50000")
    run(sys.executable, "shell_input.py", *flag)
    run(sys.executable, "stalls.py", *flag)
    run(sys.executable, "service.py", *flag)
    if glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        run(sys.executable, "store_backends.py", *flag)
    else:
        print(
            "\n(PostgreSQL server not found: store_backends.py skipped; apt-get install postgresql)"
        )
    # Tornado's own suite with Tornado traced (issue 20): minutes per mode
    run(
        sys.executable,
        "tornado_suite.py",
        *(["--quick", "--modes", "exceptions"] if opts.quick else []),
    )
    print(f"\nall benchmarks: {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
