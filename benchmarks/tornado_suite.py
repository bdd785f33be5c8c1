"""Tornado's own test suite with twelve Tornado modules traced (issue 20): run it, time it.

``python benchmarks/tornado_suite.py run MODE`` runs the suite once in this process (the
suite shipped inside the installed tornado package, ``tornado.test.runtests``) after tracing
every function and method of the twelve modules in :data:`MODULES` with the public API, and
exits with the suite's status.  Its last stdout line is ``otrace-suite {json}``: mode,
traced functions, how many needed a wrapper, contexts recorded.  Modes:

* ``plain`` -- otrace imported, nothing traced (the baseline);
* ``off`` -- everything traced, ``trace_active`` off;
* ``exceptions`` -- exceptions-only traces;
* ``nomatch`` -- ``-c name==otrace-never``: the inline test runs where a function has a
  ``name`` argument, the others cannot match (exceptions only);
* ``call`` -- ``-c call`` on everything, ``max_recent`` 10.

``python benchmarks/tornado_suite.py [--quick] [--modes a,b]`` is the benchmark: each mode
in its own subprocess, rounds alternating with ``plain``, and prints the wall-time ratio of
each mode to the baseline of the same round, plus the suite's failures per mode.
``--quick``: one round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MODULES = (
    "tornado.web",
    "tornado.httputil",
    "tornado.escape",
    "tornado.gen",
    "tornado.iostream",
    "tornado.httpserver",
    "tornado.http1connection",
    "tornado.routing",
    "tornado.template",
    "tornado.locks",
    "tornado.queues",
    "tornado.websocket",
)
# Tornado's own tests that assert a wall-clock bound: on a loaded machine they fail without
# otrace as well (plain mode, nothing traced, load about 10 on two cores: test_request_timeout
# over HTTPS in 7 of 7 runs, test_gc in 1 of 7; the last two failed at load 6-7 in the full
# suite, traced off and exceptions-only), so there they measure the machine, not otrace.  They
# are skipped in every mode, plain included; what tracing costs in time is this benchmark's
# ratio.  (A name another Tornado lacks is ignored.)
TIMING_TESTS = {
    "tornado.test.simple_httpclient_test.SimpleHTTPClientTestMixin.test_request_timeout": (
        "its 0.1 s request timeout must not fire before the server's handler has run"
    ),
    "tornado.test.gen_test.RunnerGCTest.test_gc": (
        "a full garbage collection of the whole suite's heap must end within 0.2 s"
    ),
    "tornado.test.iostream_test.TestReadWriteMixin.test_large_read_until": (
        "a performance test (Tornado's comment): a 4 MB read_until within the 5 s test timeout"
    ),
    "tornado.test.simple_httpclient_test.TLSHandshakeTimeoutTestCase.test_tls_handshake_timeout": (
        "resolving and connecting must take less than its 0.5 s connect timeout"
    ),
}
MODES = ("plain", "off", "exceptions", "nomatch", "call")
CONDITIONS = {"off": "", "exceptions": "", "nomatch": "name==otrace-never", "call": "call"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(mode: str, extra: list[str]) -> None:
    """Trace, then run the suite here; exits with its status."""
    import importlib

    import otrace
    from otrace.runtime import default

    rt = default()
    traced = 0
    wrapped: list[str] = []
    if mode != "plain":
        if mode == "call":
            rt.params.set("max_recent", 10)
        for name in MODULES:
            spec = otrace.trace(importlib.import_module(name), condition=CONDITIONS[mode])
            wrapped += [w for w in spec.warnings if "traced with a wrapper" in w]
        traced = len(rt.tracer.sites)
        if mode == "off":
            rt.params.set("trace_active", False)
    import runpy

    skipped = _skip_timing_tests()
    sys.argv = ["tornado.test.runtests", *extra]
    status: object = 0
    try:  # as ``python -m tornado.test.runtests``: unittest finds its tests in __main__
        runpy.run_module("tornado.test.runtests", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        status = exc.code
    report = {
        "mode": mode,
        "traced": traced,
        "wrapped": len(wrapped),
        "wrapped_because": wrapped[:40],
        "contexts": len(rt.store.all),
        "skipped_timing_tests": skipped,
        "recent": sorted(rt.store.all)[:30],
        "status": status,
    }
    print("otrace-suite " + json.dumps(report), flush=True)
    sys.exit(status)


def _skip_timing_tests() -> list[str]:
    """Mark :data:`TIMING_TESTS` skipped (with their reason); the names found."""
    import importlib
    import unittest

    found = []
    for path, why in TIMING_TESTS.items():
        module, cls, name = path.rsplit(".", 2)
        try:
            owner = getattr(importlib.import_module(module), cls)
            test = getattr(owner, name)
        except (ImportError, AttributeError):
            continue
        reason = f"wall-clock bound: {why} (skipped by otrace's benchmarks/tornado_suite.py)"
        setattr(owner, name, unittest.skip(reason)(test))
        found.append(path)
    return found


def run_child(mode: str, timeout: float = 1200.0, extra: tuple[str, ...] = ()) -> dict:
    """One suite run in a subprocess: its report, wall time, failures and output tail."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "run", mode, *extra],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    wall = time.perf_counter() - start
    report: dict = {}
    for line in done.stdout.splitlines():
        if line.startswith("otrace-suite "):
            report = json.loads(line[len("otrace-suite ") :])
    failed = [
        line.split(" ", 1)[1]
        for line in done.stderr.splitlines()
        if line.startswith(("FAIL: ", "ERROR: "))
    ]
    summary = [
        line for line in done.stderr.splitlines() if line.startswith(("Ran ", "OK", "FAILED"))
    ]
    return {
        "mode": mode,
        "returncode": done.returncode,
        "wall": wall,
        "report": report,
        "failed": failed,
        "summary": summary,
        "tail": done.stderr[-3000:],
    }


def bench(modes: list[str], rounds: int) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import machine, result

    print(machine())
    print(f"Tornado's suite, {len(MODULES)} modules traced; wall-time ratio to 'plain' per round")
    ratios: dict[str, list[float]] = {m: [] for m in modes}
    last: dict[str, dict] = {}
    for _ in range(rounds):
        for mode in modes:
            base = run_child("plain")
            got = run_child(mode)
            ratios[mode].append(got["wall"] / base["wall"])
            last[mode] = got
            last["plain"] = base
    print(f"  plain: {last['plain']['wall']:.1f} s, {' '.join(last['plain']['summary'])}")
    for mode in modes:
        got = last[mode]
        target = " (target <= 1.15)" if mode in ("off", "exceptions", "nomatch") else ""
        print(
            f"  {mode:10s} ratio {statistics.median(ratios[mode]):.2f}{target}  "
            f"{got['report'].get('traced', '?')} functions "
            f"({got['report'].get('wrapped', '?')} wrapped), "
            f"{got['report'].get('contexts', '?')} contexts, {' '.join(got['summary'])}"
        )
        for name in got["failed"]:
            print(f"      failed: {name}")
        gated = mode in ("off", "exceptions", "nomatch")
        result(
            f"9-tornado-suite-{mode}-time-ratio",
            statistics.median(ratios[mode]),
            "<=" if gated else "--",
            1.15 if gated else "--",
            "ratio",
        )
        result(f"9-tornado-suite-{mode}-failures", len(got["failed"]), "--", "--", "tests")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="off,exceptions,nomatch,call")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in modes if m not in MODES]
    if bad:
        parser.error(f"unknown mode(s): {', '.join(bad)}")
    bench(modes, 1 if args.quick else args.rounds)


if __name__ == "__main__":
    main()
