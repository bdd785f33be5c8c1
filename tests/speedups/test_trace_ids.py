"""otrace._trace_ids issues the same timestamps as record's Python clock, and stays unique.

The two clocks are run from the same last timestamp over the same times (steps forward,
within one microsecond, back a little, back past a second) and must agree; threads asking
at once, and finalizers asking between the program's requests, never get a duplicate.  Skipped
where the extension is not built, unless ``OTRACE_REQUIRE_SPEEDUPS=1`` (CI): then it fails.
"""

from __future__ import annotations

import gc
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otrace.contexts import record
from tests.speedups.ext import extension


@pytest.fixture(scope="module")
def c():
    return extension("_trace_ids")


@pytest.fixture(autouse=True)
def _clock_restored():
    """Ids of other times push every later id there: both clocks go back afterwards."""
    saved = record.timestamp_state(), (record._last_base, record._last_frac)
    yield
    record.set_timestamp_state(saved[0])
    record._last_base, record._last_frac = saved[1]


def test_used_when_built(c) -> None:
    assert record.new_timestamp is c.new_timestamp


def both(c, times: list) -> tuple[list[str], list[str]]:
    """Each clock's timestamps for ``times``, both starting from the C clock's state."""
    start = c.state()
    got = [c.new_timestamp(t) for t in times]
    record._last_base, record._last_frac = start
    want = [record._py_new_timestamp(t) for t in times]
    return got, want


STEPS = [0.0, 1e-7, 1e-6, 3e-5, 0.25, 0.250001, 1.0, 1.5, 61.0, -1e-6, -0.1, -2.0, -3600.0]


@given(st.lists(st.sampled_from(STEPS), max_size=40), st.sampled_from([1_790_000_000.0, 1e9]))
@settings(max_examples=200)
def test_same_timestamps_as_python(c, steps: list, start: float) -> None:
    times, now = [], start
    for step in steps:
        now += step
        times.append(now)
    c.set_state("", "")
    got, want = both(c, times)
    assert got == want
    assert len(set(got)) == len(got) and got == sorted(got)


def test_now_none_and_bad_arguments(c) -> None:
    a, b = c.new_timestamp(), c.new_timestamp(None)
    assert b > a
    assert c.new_timestamp(1_790_000_000) > b  # (an int: a time in 2026)
    for bad in ("now", [1.0], 1.0 + 0j):
        with pytest.raises(TypeError):
            c.new_timestamp(bad)
    with pytest.raises(TypeError):
        c.new_timestamp(1.0, 2.0)
    with pytest.raises(TypeError):
        c.set_state("a", 1)


def test_unique_across_threads(c) -> None:
    out: list[list[str]] = [[] for _ in range(4)]
    go = threading.Event()

    def run(mine: list[str]) -> None:
        go.wait(10)
        for _ in range(5000):
            mine.append(c.new_timestamp())

    threads = [threading.Thread(target=run, args=(o,)) for o in out]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(30)
    ids = [i for o in out for i in o]
    assert len(ids) == 20000 and len(set(ids)) == 20000
    assert all(o == sorted(o) for o in out)


def test_a_finalizer_asking_meanwhile_gets_its_own(c) -> None:
    """Finalizers asking for timestamps while the program asks too (a collection started
    at the loop's allocations runs them): all differ, and nothing waits."""
    ids: list[str] = []

    class Asks:
        def __del__(self):
            ids.append(c.new_timestamp(1_790_000_000.0))

    threshold = gc.get_threshold()
    gc.set_threshold(1)
    try:
        for _ in range(200):
            a = Asks()
            a.cycle = a  # (freed only by a collection, at some allocation later)
            del a
            ids.append(c.new_timestamp(1_790_000_000.0))
    finally:
        gc.set_threshold(*threshold)
        gc.collect()
    assert len(ids) == 400 and len(set(ids)) == 400
