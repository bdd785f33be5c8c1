"""Fuzzing the shell over a hostile program while program threads run traced code.

Random and hostile lines go to a shell whose globals are full of objects that raise, hang,
recurse or are huge (tests/safety/hostile.py), while two program threads call a traced
function.  Checked: no program thread dies, no line gives an internal-error traceback, no
program thread stalls more than 100 ms, and in safe mode nothing in the program changes
(none of its special methods even runs).  Bounded to about a minute in all (CI).

Hypothesis makes the lines first, then the shell runs them while the program threads are
timed: the lines do not depend on what the shell answers (problems are collected, not
raised), so this is the same fuzzing, and the timing sees otrace's work, not hypothesis's.
Before the timed part the test's own heap (pytest, hypothesis, every test module) is moved
out of the garbage collector's way with ``gc.freeze()``: a full collection walks every
object of the process, and with hypothesis's record of the examples growing (10^5 objects)
those collections alone stalled the program threads for 100-180 ms.  A server's own heap
costs it the same with or without otrace; what otrace allocates is still collected (and
timed).
"""

from __future__ import annotations

import collections
import gc
import importlib
import os
import threading
import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from otrace import log, tracing
from otrace.shell.session import Session

TOTAL = float(os.environ.get("OTRACE_FUZZ_SECONDS", "60"))  # seconds for both modes, at most
BUDGET = TOTAL / 2  # per mode: generating a quarter of it, running the rest
EXAMPLES = int(os.environ.get("OTRACE_FUZZ_EXAMPLES", "3000"))  # each up to 8 lines
STALL_LIMIT = 0.1  # seconds a program thread may go without running (the bound)
REPORTS: list[str] = []  # one line per mode, printed at the end of the run (conftest.py)

NAMES = [
    "raising",
    "hanging",
    "recursive",
    "baddir",
    "hangdir",
    "getattr_obj",
    "hanggetattr",
    "props",
    "liar",
    "everything",
    "huge_list",
    "huge_dict",
    "many",
    "nested",
    "store",
    "text",
    "counter",
    "work",
    "_private_token",
    "props.raising",
    "props.hanging",
    "props.cached",
    "props.plain",
    "everything.x",
    "getattr_obj.a.b",
    "hanggetattr.x",
    "liar.__class__",
    "huge_dict['k5']",
    "store['new']",
    "/osh/globals/props",
    "/osh/recent",
    "/osh/all",
    "~~",
    "..",
    "/",
    "/etc",
    "*",
    "h*",
]
COMMANDS = [
    "ls",
    "ls -l",
    "ls -la",
    "ls -lt",
    "ls -c",
    "cd",
    "cdls",
    "pr",
    "view",
    "trace",
    "trace -c call",
    "trace -a hold -c call",
    "untrace",
    "tag",
    "set",
    "set ls_limit",
    "help",
    "pwd",
    "source",
    "del",
    "save",
    "resume",
    "exec",
    "edit",
    "run",
    "pushd",
    "popd",
]
EXPRS = [
    "{n}",
    "{n} + 1",
    "{n}[0]",
    "{n} == {n}",
    "[*{n}]",
    "{{**{n}}}",
    "f'{{{n}:x}}'",
    "'%s' % ({n},)",
    "{n} in {n}",
    "not {n}",
    "{n}.keys",
    "len({n})",
    "-" * 300 + "1",
    "(" * 150 + "1" + ")" * 150,
    "{n} if {n} else {n}",
]
HUGE = ["[0] * 10**9", "10 ** 10 ** 10"]  # safe mode refuses them; unsafe mode would compute


def lines_for(safe: bool) -> st.SearchStrategy[list[str]]:
    name = st.sampled_from(NAMES)
    exprs = EXPRS + HUGE if safe else EXPRS
    line = st.one_of(
        st.builds(lambda c, n: f"{c} {n}", st.sampled_from(COMMANDS), name),
        st.builds(lambda e, n: e.format(n=n), st.sampled_from(exprs), name),
        st.builds(lambda c: c, st.sampled_from(COMMANDS)),
        st.text(max_size=200),
        st.builds(lambda a, b: f"{a} {b}", st.sampled_from(COMMANDS), st.text(max_size=50)),
    )
    return st.lists(line, min_size=1, max_size=8)


class ProgramThreads:
    """Two program threads calling a traced function; they record stalls and deaths.

    A stall is the time between two calls of the function beyond the thread's own 1 ms
    sleep; the longest ones are kept with their start and end, to name what ran then."""

    def __init__(self, prog):
        self.prog = prog
        self.stop = threading.Event()
        self._gc_start = 0.0
        self.max_gap = collections.Counter()
        self.stalls: list[tuple] = []  # (start, end, thread, process CPU s) over 20 ms
        self.collections: list[tuple[float, float, int]] = []  # (start, end, generation)
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self.run, name=f"program-{i}", daemon=True) for i in range(2)
        ]

    def run(self):
        me = threading.current_thread().name
        last, last_cpu = time.monotonic(), time.process_time()
        try:
            while not self.stop.is_set():
                self.prog.work(1)
                now, cpu = time.monotonic(), time.process_time()
                self.max_gap[me] = max(self.max_gap[me], now - last)
                if now - last > 0.02:  # with the CPU time the whole process had meanwhile
                    self.stalls.append((last, now, me, cpu - last_cpu))
                last, last_cpu = now, cpu
                time.sleep(0.001)
        except BaseException as exc:  # noqa: B036 - a dead program thread is the failure
            self.errors.append(exc)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(5)

    def worst(self, commands: list[tuple[float, float, str]]) -> str:
        """The longest stall, and the shell lines that ran during it."""
        if not self.stalls:
            return f"worst stall {max(self.max_gap.values(), default=0) * 1000:.0f} ms"
        start, end, name, cpu = max(self.stalls, key=lambda s: s[1] - s[0])
        during = [
            f"{text} ({(t1 - t0) * 1000:.0f} ms)"
            for t0, t1, text in commands
            if t0 < end and t1 > start
        ]
        gcs = [
            f"gen {g} {(t1 - t0) * 1000:.0f} ms"
            for t0, t1, g in self.collections
            if t0 < end and t1 > start and t1 - t0 > 0.005
        ]
        # the process got little CPU meanwhile: the machine, not a thread holding the GIL
        return (
            f"worst stall {(end - start) * 1000:.0f} ms ({name}), process CPU "
            f"{cpu / (end - start):.0%} of it, garbage collections {', '.join(gcs) or 'none'}; "
            f"shell lines then: {', '.join(during[:5]) or 'none'}"
        )

    def on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.monotonic()
        elif len(self.collections) < 100_000:
            self.collections.append((self._gc_start, time.monotonic(), info["generation"]))


@pytest.fixture
def prog(tmp_path, monkeypatch):
    from tests.safety import hostile

    monkeypatch.chdir(tmp_path)  # ``save``/``edit`` with random names write into the cwd

    module = importlib.reload(hostile)
    yield module
    module.HANG.set()  # release anything still hanging (nothing should be)


def _generate(safe: bool, seconds: float) -> list[list[str]]:
    """Lists of lines from hypothesis, for at most ``seconds`` (but at least 100 lists).

    In runs of 100 examples, the clock read between runs: one run of all EXAMPLES went on
    generating after ``seconds`` (keeping nothing), 30 s instead of 7.5 at load 7.5, which
    with the lines still to run took the test past its timeout on a loaded machine."""
    batches: list[list[str]] = []
    started = time.monotonic()

    @settings(
        max_examples=100,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(lines_for(safe))
    def collect(lines):
        batches.append(lines)

    while len(batches) < EXAMPLES and (len(batches) < 100 or time.monotonic() - started < seconds):
        collect()
    return batches


def _fuzz(prog, safe: bool) -> tuple[ProgramThreads, list[str]]:
    started = time.monotonic()
    batches = _generate(safe, BUDGET / 4)
    deadline = max(started + BUDGET, time.monotonic() + BUDGET / 4)  # a slow start: run anyway
    sh = Session(vars(prog), allow_unsafe=not safe)
    if not safe:
        sh.execute("set safe_mode False")
        sh.execute("set editor false")  # edit without a file must not open an editor here
    heard: collections.deque[str] = collections.deque(maxlen=1000)
    log.add_sink(heard.append)
    tracing.trace(prog.work, prog, "work", condition="x==1", count=-(10**9))  # evaluated, skipped
    problems: list[str] = []
    commands: list[tuple[float, float, str]] = []
    gc.collect()
    gc.freeze()  # the test's own heap (see the module docstring)
    program = ProgramThreads(prog)
    gc.callbacks.append(program.on_gc)
    try:
        with program:
            for n, lines in enumerate(batches):
                if n >= 100 and time.monotonic() > deadline:  # the first 100 lists run anyway
                    break
                for text in lines:
                    t0, where = time.monotonic(), "/".join(map(str, sh.cwd))
                    r = sh.execute(text)
                    commands.append((t0, time.monotonic(), f"{text[:60]!r} in /{where[:40]}"))
                    if "internal error" in r.err:
                        problems.append(f"{text!r}: {r.err[-600:]}")
                    sh.cwd = ("osh", "globals") if len(problems) > 50 else sh.cwd
    finally:
        gc.callbacks.remove(program.on_gc)
        gc.unfreeze()
        log.remove_sink(heard.append)
        sh.close()
    program.report = program.worst(commands)
    program.lines = len(commands)
    load = os.getloadavg()[0]
    REPORTS.append(
        f"{'safe' if safe else 'unsafe'} mode: {len(commands)} lines, load {load:.1f}; "
        f"{program.report}"
    )
    return program, problems


def _check(program: ProgramThreads, problems: list[str]) -> None:
    assert program.lines >= 100, f"only {program.lines} lines ran"
    assert not problems, "\n".join(problems[:5])
    assert not program.errors, program.errors
    assert all(not t.is_alive() for t in program.threads)
    assert sum(program.prog.WORK_DONE.values()) > 0
    worst = max(program.max_gap.values())
    if os.getloadavg()[0] <= (os.cpu_count() or 1):  # an overloaded machine stalls everyone
        assert worst < STALL_LIMIT, program.report


@pytest.mark.timeout(BUDGET * 1.5 + 60)
def test_fuzz_safe_mode_changes_nothing(prog):
    before = prog.snapshot()
    program, problems = _fuzz(prog, safe=True)
    _check(program, problems)
    after = prog.snapshot()
    assert after == before, f"safe mode changed the program: {after['calls'][:10]}"


@pytest.mark.timeout(BUDGET * 1.5 + 60)
def test_fuzz_unsafe_mode_survives(prog):
    prog.HANG_SECONDS = 0.05  # unsafe mode calls the program's code: hanging ones come back
    program, problems = _fuzz(prog, safe=False)
    _check(program, problems)
