"""Figure 2m (3.12+): sys.monitoring prototyped as a back end, with callbacks doing the
real work per case, against the wrapper a function without source gets today and in place.

Run by ``trace_overhead.py`` (timed, side by side) and ``trace_overhead.py --instructions``
(counted by callgrind; ``--child-2m`` is the measured child).  The cases and what each
callback does: :class:`MonitoringPrototype` and :func:`setup_2m`.
"""

from __future__ import annotations

import platform
import shutil
import sys
import timeit
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import callgrind_child, callgrind_per_iteration, emit, interleave, result, slug, table
from _traced import make_module, sourceless_module, thin

from otrace.log import add_sink
from otrace.tracing import trace, unwrap_all
from otrace.tracing.conditions import And, ArgTest


def free_tool_id() -> int:
    """A sys.monitoring tool id nobody holds (coverage and profilers keep theirs)."""
    mon = sys.monitoring
    for tool in (mon.PROFILER_ID, 3, 4, mon.DEBUGGER_ID, mon.COVERAGE_ID):
        if mon.get_tool(tool) is None:
            return tool
    raise RuntimeError("every sys.monitoring tool id is taken")


def return_filter(predicate: Any) -> Callable[[Any], bool]:
    """``value -> might match`` for the ``return`` items of ``predicate`` (generated, as the
    wrappers' argument filters are: one inline comparison per item)."""
    parts = predicate.parts if isinstance(predicate, And) else (predicate,)
    items = [p for p in parts if isinstance(p, ArgTest) and p.uses_return]
    lines = ["def test(value):", "    try:"]
    lines += [
        f"        if not (value {p.op} c[{i}]):\n            return False"
        for i, p in enumerate(items)
    ]
    lines += ["    except Exception:", "        return True", "    return True"]
    env: dict[str, Any] = {"c": tuple(p.value for p in items)}
    exec("\n".join(lines), env)  # noqa: S102 - ops validated by the condition parser
    return env["test"]


class MonitoringPrototype:
    """The per-call work a sys.monitoring back end would do, on real trace sites.

    Sites are made by ``trace`` on functions without source (so each has its wrapper, its
    published ``state`` and its compiled argument filter ``quick``); the prototype sets local
    events on the *original* function's code object and the benchmark calls the original,
    so only the callbacks run.  What each callback does per call (a call that does not
    match never gets further):

    * PY_START: find the site by ``id(code)`` (a code object's hash is computed from its
      fields on every call), read ``site.state``; for a condition, the traced frame (``sys._getframe(1)``), its
      arguments from ``f_locals`` (3.12: a dict filled from the fast locals; 3.13: a
      write-through proxy) into the ``args`` tuple the condition machinery takes, then the
      site's own ``quick`` filter -- the same one the wrapper runs.
    * PY_RETURN: the site, its state, the generated return-value test; the value comes with
      the event, no frame is needed until something matches.

    A match would go on to ``handlers.on_call`` / ``on_return`` as the other back ends do; the
    cases measured never match.
    """

    def __init__(self) -> None:
        self.mon = sys.monitoring
        self.tool = free_tool_id()
        self.starts: dict[int, tuple[Any, tuple[str, ...]]] = {}
        self.returns: dict[int, list] = {}
        self.matched = 0
        self.codes: list[types.CodeType] = []
        mon = self.mon
        mon.use_tool_id(self.tool, "otrace-bench")
        mon.register_callback(self.tool, mon.events.PY_START, self.make_start())
        mon.register_callback(self.tool, mon.events.PY_RETURN, self.make_return())

    def make_start(self) -> Callable:
        starts, getframe, no_kwargs = self.starts, sys._getframe, {}

        def start(code: types.CodeType, offset: int) -> None:
            entry = starts.get(id(code))
            if entry is None:
                return
            site, names = entry
            state = site.state
            if state is None:
                return
            spec, quick, _ = state
            if quick is None:
                return
            loc = getframe(1).f_locals
            args = tuple([loc[name] for name in names])
            if quick(args, no_kwargs):
                self.matched += 1

        return start

    def make_start_floor(self) -> Callable:
        getframe = sys._getframe

        def start(code: types.CodeType, offset: int) -> None:
            # the least a condition on an argument can do: read it and compare
            if getframe(1).f_locals["a"] == 99:
                self.matched += 1

        return start

    def make_return(self) -> Callable:
        returns = self.returns

        def ret(code: types.CodeType, offset: int, value: Any) -> None:
            entry = returns.get(id(code))
            if entry is None:
                return
            site, seen, test = entry
            state = site.state
            if state is None:
                return
            if state is not seen:  # a registry change: the test is made again
                entry[1], entry[2] = state, test = state, return_filter(state[0].predicate)
            if test(value):
                self.matched += 1

        return ret

    def on_start(self, func: Any, site: Any) -> None:
        code = func.__code__
        self.starts[id(code)] = (site, code.co_varnames[: code.co_argcount])
        self.local(code, self.mon.events.PY_START)

    def on_return(self, func: Any, site: Any) -> None:
        code = func.__code__
        self.returns[id(code)] = [site, None, None]
        self.local(code, self.mon.events.PY_RETURN)

    def local(self, code: types.CodeType, events: int) -> None:
        self.codes.append(code)
        self.mon.set_local_events(self.tool, code, events)

    def close(self) -> None:
        """Events off, callbacks out, the id free (before 3.14 freeing an id leaves its
        events and callbacks in place, so they are removed one by one)."""
        mon = self.mon
        for code in self.codes:
            mon.set_local_events(self.tool, code, 0)
        mon.set_events(self.tool, 0)
        for mapping in (self.starts, self.returns):
            mapping.clear()
        for event in (mon.events.PY_START, mon.events.PY_RETURN, mon.events.PY_UNWIND):
            mon.register_callback(self.tool, event, None)
        mon.free_tool_id(self.tool)


def inline_return_wrapper(site: Any, func: Callable) -> Callable:
    """What the wrapper could do instead for a return-value condition: call, then test the
    value it already holds (the wrapper today makes a Call for every call, see on_call)."""
    from otrace.tracing.wrappers import on_exception

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = site.state
        if state is None:
            return func(*args, **kwargs)
        spec = state[0]
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            on_exception(site, spec, exc)
            raise
        try:
            hit = result == 99
        except Exception:
            hit = True
        if hit:
            raise AssertionError("the benchmark's calls never match")
        return result

    return wrapper


def traced_site(mod: types.ModuleType, fname: str, cond: str) -> Any:
    """Trace ``mod.fname`` with ``cond``; its site (the function has no source: a wrapper)."""
    trace(getattr(mod, fname), mod, fname, condition=cond)
    site = getattr(getattr(mod, fname), "_otrace_site", None)
    if site is None or getattr(site, "wrapped_because", None) is None:
        raise RuntimeError(f"{fname} was expected to get the wrapper (no source)")
    return site


def setup_2m() -> tuple[MonitoringPrototype, dict[str, Callable], Callable[[], None]]:
    """Figure 2m's cases: (prototype, functions by case, what undoes the floor's tool)."""
    proto = MonitoringPrototype()
    bare = make_module("bench_mbare", fname="addb").addb
    fns: dict[str, Callable] = {"bare call": bare, "thin wrapper": thin(bare)}
    for cond, case in (("a==99", "A"), ("return==99", "R")):
        label = f"-c {cond}"
        placed = make_module(f"bench_mplace{case}", fname=f"addp{case}")
        trace(getattr(placed, f"addp{case}"), placed, f"addp{case}", condition=cond)
        fns[f"{label}: in place"] = getattr(placed, f"addp{case}")
        nosrc = sourceless_module(f"bench_mwrap{case}", f"addw{case}")
        site = traced_site(nosrc, f"addw{case}", cond)
        fns[f"{label}: wrapper (no source, today)"] = getattr(nosrc, f"addw{case}")
        # the same kind of site, its original function called directly: only callbacks run
        monitored = sourceless_module(f"bench_mmon{case}", f"addm{case}")
        msite = traced_site(monitored, f"addm{case}", cond)
        if case == "A":
            proto.on_start(msite.func, msite)
            fns[f"{label}: sys.monitoring PY_START, real callback"] = msite.func
        else:
            proto.on_return(msite.func, msite)
            fns[f"{label}: sys.monitoring PY_RETURN (exceptions: global PY_UNWIND)"] = msite.func
            # PY_RETURN for the condition, the wrapper (exceptions only) for exceptions
            hybrid = sourceless_module("bench_mhybrid", "addh")
            hsite = traced_site(hybrid, "addh", "")
            proto.returns[id(hsite.func.__code__)] = [msite, None, None]
            proto.local(hsite.func.__code__, proto.mon.events.PY_RETURN)
            fns[f"{label}: sys.monitoring PY_RETURN + wrapper for exceptions"] = hybrid.addh
            fns[f"{label}: prototype wrapper testing the value it holds"] = inline_return_wrapper(
                site, site.func
            )
    # the mechanism's own floor, and the cheapest possible argument read
    empty = make_module("bench_mempty", fname="adde").adde
    floor = make_module("bench_mfloor", fname="addf").addf
    mon = proto.mon
    other = free_tool_id()  # a second tool: its callbacks are its own
    mon.use_tool_id(other, "otrace-bench-floor")
    mon.register_callback(other, mon.events.PY_START, proto.make_start_floor())
    mon.set_local_events(other, floor.__code__, mon.events.PY_START)
    proto.local(empty.__code__, mon.events.PY_START)  # not in starts: returns at once
    fns["-c a==99: sys.monitoring PY_START, empty callback (floor)"] = empty
    fns["-c a==99: sys.monitoring PY_START, only f_locals['a']==99"] = floor

    # the callbacks run and see a match: one matching call each (the hybrid and the
    # return-value test of the monitored site share the site), then the count starts over
    for k, f in fns.items():
        if "real callback" in k or "PY_RETURN" in k or "only f_locals" in k:
            before = proto.matched
            f(99, 0)
            if proto.matched != before + 1:
                raise RuntimeError(f"{k}: the callback did not see the matching call")
    proto.matched = 0

    def release_floor() -> None:
        mon.set_local_events(other, floor.__code__, 0)
        mon.register_callback(other, mon.events.PY_START, None)
        mon.free_tool_id(other)

    return proto, fns, release_floor


def figure2m(n: int, rounds: int) -> None:
    """sys.monitoring with real callbacks vs the wrapper (no source) and in place, per case."""
    proto, fns, release_floor = setup_2m()

    def runner(f):
        return lambda: timeit.timeit(lambda: f(1, 3), number=n) / n

    try:
        med = interleave({k: runner(f) for k, f in fns.items()}, rounds)
    finally:
        unwrap_all()
        release_floor()
    if proto.matched:
        raise RuntimeError("a benchmark call matched its condition")
    unwind = unrelated_raise_cost(proto, n)
    proto.close()
    version = platform.python_version()
    bare_cost, thin_cost = med["bare call"], med["thin wrapper"]
    added = {k: (v - bare_cost) / (thin_cost - bare_cost) for k, v in med.items()}
    rows = [
        (k, f"{v * 1e9:.0f}", f"{v / bare_cost:.2f}", f"{added[k]:.2f}") for k, v in med.items()
    ]
    table(
        f"2m. sys.monitoring vs wrapper, Python {sys.version.split()[0]} "
        f"(median of {rounds} rounds of {n})",
        rows,
        ("case", "ns/call", "x bare", "added / thin added"),
    )
    for k in fns:
        if k.startswith("-c"):
            result(f"2-mon-{slug(k)}-added-ratio-py{version}", added[k], "--", "--", "ratio")
            emit("monitoring", python=version, case=k, added_ratio=added[k])
    decide(added, "2-mon-", version)
    print(
        f"sys.monitoring PY_UNWIND (global): an unrelated raise costs {unwind[0] * 1e9:.0f} ns "
        f"with the event on vs {unwind[1] * 1e9:.0f} ns without ({unwind[0] / unwind[1] - 1:+.0%})"
    )
    result(f"2-mon-unrelated-raise-ratio-py{version}", unwind[0] / unwind[1], "--", "--", "ratio")
    emit(
        "monitoring_unrelated_raise",
        python=version,
        with_ns=unwind[0] * 1e9,
        without_ns=unwind[1] * 1e9,
    )


def decide(added: dict[str, float], prefix: str, version: str) -> None:
    """Print and report the ratios the decision rests on, per case."""
    # The decision, per case: the monitoring variant a back end could ship (the exceptions
    # every trace records must come from somewhere that does not tax the whole process)
    # against the wrapper of today and the best wrapper measured.
    comparisons = (
        (
            "a==99-monitoring-vs-wrapper",
            "-c a==99: sys.monitoring PY_START, real callback",
            "-c a==99: wrapper (no source, today)",
        ),
        (
            "a==99-argument-read-alone-vs-wrapper",
            "-c a==99: sys.monitoring PY_START, only f_locals['a']==99",
            "-c a==99: wrapper (no source, today)",
        ),
        (
            "return==99-monitoring-vs-wrapper",
            "-c return==99: sys.monitoring PY_RETURN + wrapper for exceptions",
            "-c return==99: wrapper (no source, today)",
        ),
        (
            "return==99-monitoring-vs-value-testing-wrapper",
            "-c return==99: sys.monitoring PY_RETURN + wrapper for exceptions",
            "-c return==99: prototype wrapper testing the value it holds",
        ),
        (
            "return==99-monitoring-global-unwind-vs-value-testing-wrapper",
            "-c return==99: sys.monitoring PY_RETURN (exceptions: global PY_UNWIND)",
            "-c return==99: prototype wrapper testing the value it holds",
        ),
    )
    for figure, mine, theirs in comparisons:
        ratio = added[mine] / added[theirs]
        print(f"{figure}: {added[mine]:.2f} / {added[theirs]:.2f} = {ratio:.2f}")
        result(f"{prefix}{figure}-py{version}", ratio, "--", "--", "ratio")


def unrelated_raise_cost(proto: MonitoringPrototype, n: int) -> tuple[float, float]:
    """Per raise of an untraced function, with and without a global PY_UNWIND event whose
    callback filters by code object: what exceptions would cost everyone else."""
    mon, tool = proto.mon, proto.tool
    watched: set[int] = set(proto.starts) | set(proto.returns)

    def unwind(code: types.CodeType, offset: int, exc: BaseException) -> None:
        if id(code) in watched:
            proto.matched += 1

    plain = make_module("bench_raise", fname="addr").addr

    def raising() -> None:
        try:
            plain(None)
        except TypeError:
            pass

    def timed(on: bool) -> float:
        if on:
            mon.register_callback(tool, mon.events.PY_UNWIND, unwind)
            mon.set_events(tool, mon.events.PY_UNWIND)
        try:
            return timeit.timeit(raising, number=n // 5) / (n // 5)
        finally:
            mon.set_events(tool, 0)
            mon.register_callback(tool, mon.events.PY_UNWIND, None)

    med = interleave({"with": lambda: timed(True), "without": lambda: timed(False)}, 9)
    return med["with"], med["without"]


RAISES = ("an unrelated raise", "an unrelated raise, global PY_UNWIND on")


def child_2m(index: int, n: int) -> None:
    """The process callgrind measures: figure 2m's case ``index``, ``n`` calls after "go"."""
    add_sink(lambda text: None)
    proto, fns, _ = setup_2m()
    if index < len(fns):
        f = list(fns.values())[index]

        def loop() -> None:
            for _ in range(n):
                f(1, 3)

    else:  # RAISES: an untraced function raising into its caller, PY_UNWIND off / on
        plain = make_module("bench_raise", fname="addr").addr
        if index - len(fns) == 1:
            mon, watched = proto.mon, set(proto.starts) | set(proto.returns)

            def unwind(code: types.CodeType, offset: int, exc: BaseException) -> None:
                if id(code) in watched:
                    proto.matched += 1

            mon.register_callback(proto.tool, mon.events.PY_UNWIND, unwind)
            mon.set_events(proto.tool, mon.events.PY_UNWIND)

        def loop() -> None:
            for _ in range(n):
                try:
                    plain(None)
                except TypeError:
                    pass

    loop()  # warm: specialised bytecode, caches
    callgrind_child(loop)


def callgrind_count(index: int, n: int) -> float:
    """Instructions per call of figure 2m's case ``index`` (the method of instructions.py)."""
    here = Path(__file__).resolve().with_name("trace_overhead.py")
    argv = [str(here), "--child-2m", str(index), str(n)]
    return callgrind_per_iteration(argv, n, f"case {index}")


def figure2m_instructions(n: int) -> None:
    """Figure 2m counted in instructions per call: what a busy machine does not move."""
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("--instructions: valgrind not found (apt-get install -y valgrind); skipped")
        return
    proto, fns, release_floor = setup_2m()
    names = list(fns)
    unwrap_all()
    release_floor()
    proto.close()
    counts = {name: callgrind_count(i, n) for i, name in enumerate(names)}
    raises = {name: callgrind_count(len(names) + i, n) for i, name in enumerate(RAISES)}
    bare, thin_count = counts["bare call"], counts["thin wrapper"]
    added = {k: (v - bare) / (thin_count - bare) for k, v in counts.items()}
    version = platform.python_version()
    table(
        f"2m. in instructions per call (callgrind, {n} calls per case), Python {version}",
        [(k, f"{v:,.0f}", f"{v - bare:,.0f}", f"{added[k]:.2f}") for k, v in counts.items()],
        ("case", "instr/call", "added", "added / thin added"),
    )
    for k in names:
        if k.startswith("-c"):
            result(f"2-mon-instr-{slug(k)}-added-ratio-py{version}", added[k], "--", "--", "ratio")
    decide(added, "2-mon-instr-", version)
    off, on = (raises[name] for name in RAISES)
    print(f"an unrelated raise: {on:,.0f} instructions with a global PY_UNWIND event vs {off:,.0f}")
    result(f"2-mon-instr-unrelated-raise-ratio-py{version}", on / off, "--", "--", "ratio")
