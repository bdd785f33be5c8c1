"""No otrace lock a program thread takes deadlocks when a finalizer re-enters otrace.

While a thread holds a lock, the collector may run a program's ``__del__`` (or a weakref
callback, or a signal handler may run) on that very thread, at any eval-breaker point.  Such
program code may enter otrace again -- announce, tag, log, set a parameter -- and reach the
same lock.  Each scenario below runs on a thread of its own with a finalizer simulated at
every such point inside the lock (see ``finalizer_points``), and one with a real collection
forced inside it; a deadlock shows as a thread that does not finish.
"""

from __future__ import annotations

import gc
import threading

import pytest

from otrace.events import Announcement
from tests.safety.finalizer_points import run_with_finalizers

pytestmark = pytest.mark.timeout(120)


def _release(lock):
    def unwedge():
        try:
            lock.release()
        except RuntimeError:
            pass

    return unwedge


# -- the console's output queue: program threads announce into it ---------------------------


def test_an_announcement_from_a_finalizer_while_announcing_does_not_deadlock():
    from otrace.service.outqueue import OutputQueue

    q = OutputQueue()
    q._waiting = True  # the writer sleeps in take(): a put wakes it
    out = run_with_finalizers(
        lambda: q.put_announcement("outer"),
        held=q._mutex.locked,
        reenter=lambda: q.put_announcement("from a finalizer"),
        unwedge=_release(q._mutex),
        timeout=5,
    )
    assert out.finished, f"deadlocked at {out.points[:1]}"
    assert not out.errors
    q._waiting = False
    texts = [f["text"] for f in q.take(0)]
    assert "outer" in texts and len(texts) == 1 + len(out.points)


class _Announces:
    """A program object that announces from its finalizer (and sits in a reference cycle)."""

    def __init__(self, q, done):
        self.q, self.done, self.me = q, done, self

    def __del__(self):
        self.q.put_announcement("finalized")
        self.done.append(True)


def test_a_collection_while_a_console_is_woken_runs_a_finalizer_that_announces():
    """The real thing: cyclic garbage whose ``__del__`` announces, collected (threshold 1)
    at the first chance -- inside the queue's lock on the old code."""
    from otrace.service.outqueue import OutputQueue

    q = OutputQueue()
    finalized: list[bool] = []

    def scenario():
        threshold = gc.get_threshold()
        try:
            for later in range(1, 12):  # the collection starts at the later-th allocation
                gc.collect()
                q._waiting = True  # a sleeping writer (as take() marks itself)
                _Announces(q, finalized)  # garbage in a cycle
                gc.set_threshold(gc.get_count()[0] + later)
                q.put_announcement(f"n{later}")
                gc.set_threshold(*threshold)
        finally:
            gc.set_threshold(*threshold)

    thread = threading.Thread(target=scenario, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        _release(q._mutex)()
        thread.join(5)
        pytest.fail("a finalizer announcing inside the queue's lock deadlocked the thread")
    gc.collect()
    assert finalized


def _owned(get_lock):
    """``held()`` for a lock (looked up anew: a test may swap it): True while this thread
    (for an RLock) or anyone (a plain lock: the scenario's thread is the only user) holds it."""

    def held():
        lock = get_lock()
        owned = getattr(lock, "_is_owned", None)
        return owned() if owned is not None else lock.locked()

    return held


# -- the default runtime, built on first use --------------------------------------------------


def test_a_finalizer_using_otrace_while_the_default_runtime_is_built():
    """Building the runtime allocates thousands of objects: a collection there may run a
    finalizer that announces or tags -- and so asks for the default runtime again."""
    from otrace import _default

    old = _default.replace(None)
    got: list = []
    try:
        out = run_with_finalizers(
            lambda: got.append(_default.get()),
            held=_owned(lambda: _default._lock),
            reenter=lambda: got.append(_default.get()),
            unwedge=_release(_default._lock),
            timeout=60,
        )
        assert out.points, "no point inside the lock: the test tested nothing"
        assert out.finished, f"deadlocked at {out.points[:1]}"
        assert not out.errors
        assert all(rt is got[0] for rt in got)  # one runtime: the first one finished is kept

        def first_use():  # the finalizer's use is the first, wherever the outer build is
            _default._state["runtime"] = None
            got.append(_default.get())

        _default.replace(None)
        got.clear()
        out = run_with_finalizers(
            lambda: got.append(_default.get()),
            held=_owned(lambda: _default._lock),
            reenter=first_use,
            unwedge=_release(_default._lock),
            timeout=30,
        )
        assert out.finished, f"deadlocked at {out.points[-1:]}"
        assert not out.errors and len(got) == len(out.points) + 1
    finally:
        _default.replace(old)


# -- trace ids ---------------------------------------------------------------------------------


def test_nothing_under_the_trace_id_lock_lets_a_finalizer_or_signal_handler_run():
    """No call and no loop under the lock (a collection may start at either on 3.12+, a
    signal handler on any version): a finalizer recording a context there would ask for an
    id under the same lock."""
    from otrace.contexts import record

    ids: list[str] = []

    def scenario():
        now = 1_790_000_000.0
        for step in (0.0, 1e-6, 3e-5, 0.25, 0.250001, 0.2500011, 1.5, -0.1, -2.0, 1e-7, 0.0):
            now += step
            ids.append(record._py_new_timestamp(now))  # (the Python clock: C's takes no lock)

    out = run_with_finalizers(
        scenario,
        held=_owned(lambda: record._ts_lock),
        reenter=lambda: ids.append(record._py_new_timestamp()),
        unwedge=_release(record._ts_lock),
        timeout=5,
    )
    assert out.finished, f"deadlocked at {out.points[:1]}"
    assert not out.points and not out.errors
    assert len(set(ids)) == len(ids) == 11


# -- the holds table ---------------------------------------------------------------------------


def test_a_finalizer_releasing_holds_while_the_holds_table_is_busy(runtime):
    """``otrace.holds`` may be called by program code -- a finalizer too, run by a collection
    while this thread registers, lists or releases breaks under the table's lock."""
    from otrace.contexts.record import TraceContext

    table = runtime.holds
    owner = type("Handler", (), {})()
    items = []

    def scenario():
        for i in range(3):
            ctx = TraceContext("breaks", "f", f"b{i}", {"self": owner}, {})
            items.append(table.new_break(ctx))
        table.held_by(owner)
        table.release_all("outer")

    out = run_with_finalizers(
        scenario,
        held=_owned(lambda: table._lock),
        reenter=lambda: (table.held_by(owner), table.pending(), table.release_all("inner")),
        unwedge=_release(table._lock),
        timeout=10,
    )
    assert out.points, "no point inside the lock: the test tested nothing"
    assert out.finished, f"deadlocked at {out.points[:1]}"
    assert not out.errors
    assert len(items) == 3 and all(i.event.is_set() and i.released for i in items)
    assert not table._pending and not table._by_owner and table._breaks == 0


# -- the event bus -------------------------------------------------------------------------------


def test_subscribing_runs_no_program_code_under_the_bus_lock(runtime):
    """``remove_sink`` finds the sink by ``==``: a program sink's ``__eq__`` (hostile, or one
    that uses otrace) must not run under the bus lock; nor may a finalizer, run by a
    collection there, that adds a sink."""
    bus = runtime.events
    added: list = []

    class Sink:
        def __call__(self, text):
            pass

        def __eq__(self, other):  # program code: uses otrace (once)
            if not added:
                added.append(print)
                runtime.add_sink(print)
            return other is self

        __hash__ = object.__hash__

    sink = Sink()

    def scenario():
        runtime.add_sink(sink)
        runtime.remove_sink(sink)

    def reenter():
        fn = [].append
        runtime.add_sink(fn)
        added.append(fn)

    out = run_with_finalizers(
        scenario,
        held=bus._lock.locked,
        reenter=reenter,
        unwedge=_release(bus._lock),
        timeout=5,
    )
    assert out.finished, f"deadlocked at {out.points[:1]}"
    assert not out.points and not out.errors
    sinks = [s.sink for s in bus.subscribers[Announcement]]
    assert sink not in [s for s in sinks if s is sink] and added
    assert all(any(s is fn for s in sinks) for fn in added)


# -- parameters, db key traces ------------------------------------------------------------------


def test_nothing_under_the_parameters_lock_lets_a_signal_handler_run():
    """A program's signal handler may set an otrace parameter (``trace_active``); if it ran
    while this thread was setting one, under the lock, it would wait for itself."""
    from otrace.params import Params

    params = Params()
    out = run_with_finalizers(
        lambda: (params.set("max_recent", 7), params.set_text("trace_active", "False")),
        held=params._lock.locked,
        reenter=lambda: params.set("stall_ms", 5),
        unwedge=_release(params._lock),
        timeout=5,
    )
    assert out.finished, f"deadlocked at {out.points[:1]}"
    assert not out.points and not out.errors
    assert params.max_recent == 7 and params.trace_active is False


def test_a_finalizer_accessing_traced_data_inside_the_access_hook(runtime):
    """The db access hook counts a key's accesses under its table's lock, on the program's
    thread: a finalizer run there may access traced data too."""
    from otrace.tracing import dbkeys

    dbkeys.trace_key("cart", count=1, tracer=runtime.tracer)
    dbkeys.trace_key("order", count=0, tracer=runtime.tracer)
    hook = dbkeys.access_hook_for(runtime.tracer)
    table = dbkeys._table(runtime.tracer)
    out = run_with_finalizers(
        lambda: hook("get", "cart", {"n": 1}),
        held=_owned(lambda: table.lock),
        reenter=lambda: hook("get", "order", {"n": 2}),
        unwedge=_release(table.lock),
        timeout=10,
    )
    assert out.points, "no point inside the lock: the test tested nothing"
    assert out.finished, f"deadlocked at {out.points[:1]}"
    assert not out.errors
    assert "cart" not in table.keys and table.keys["order"].matches == len(out.points)


# -- lazily built frame stacks -----------------------------------------------------------------


def test_nothing_under_the_lazy_install_lock_lets_a_finalizer_run():
    """A context's ``framestack`` is made on first read, on any thread (a program thread
    too); a finalizer run while it is put in place may read another context's."""
    from otrace.contexts import lazy

    def trc():
        return lazy.lazy_trc(object(), ("mod.py", 1, "f"), "f", "mod")  # type: ignore[arg-type]

    first = trc()
    out = run_with_finalizers(
        lambda: lazy.fill(first),
        held=lazy._INSTALL.locked,
        reenter=lambda: lazy.fill(trc()),
        unwedge=_release(lazy._INSTALL),
        timeout=5,
    )
    assert out.finished, f"deadlocked at {out.points[:1]}"
    assert not out.points and not out.errors
    assert type(first) is lazy.TrcDict and first["where"] == "f"


# -- otrace's threads hold a lock while a finalizer blocks them -----------------------------------
# A collection on one of otrace's threads (shell, service) while it holds a lock may run a
# program finalizer that blocks on a program lock -- held by a program thread, which must
# then not wait for otrace's lock: such waits are bounded, or there is none.


def _stuck_holding(lock):
    """A thread holding ``lock`` until released (as one whose finalizer blocked)."""
    taken, done = threading.Event(), threading.Event()

    def hold():
        with lock:
            taken.set()
            done.wait(30)

    threading.Thread(target=hold, daemon=True).start()
    assert taken.wait(5)
    return done


def _finishes(fn, timeout=5.0):
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive()


def test_a_traced_call_during_exec_lock_waits_boundedly_for_the_hold_lock(runtime):
    hold = runtime.tracer.exec_hold
    entered, leave = threading.Event(), threading.Event()

    def typed_code():  # a session evaluating under exec_lock
        with hold.hold():
            entered.set()
            leave.wait(30)

    threading.Thread(target=typed_code, daemon=True).start()
    assert entered.wait(5)
    done = _stuck_holding(hold._cond)
    answers: list[bool] = []
    try:
        assert _finishes(lambda: answers.append(hold.admit()))
        assert answers == [False]  # ran untraced
    finally:
        done.set()
        leave.set()


def test_a_break_recorded_while_a_service_thread_holds_its_lock(runtime):
    """A break's context tells the consoles to redraw their prompt (``BRK:``), on the program
    thread that recorded it."""
    from otrace.contexts.record import TraceContext
    from otrace.events import ContextRecorded
    from otrace.service.server import Service

    service = Service(lambda: None, runtime=runtime)
    ctx = TraceContext("breaks", "f", "x", {}, {})
    done = _stuck_holding(service._lock)
    try:
        assert _finishes(lambda: service._on_context(ContextRecorded(ctx)))
    finally:
        done.set()


# -- a writer restarted in a forked child ---------------------------------------------------------


def test_a_finalizer_recording_while_a_forked_child_restarts_its_writer(tmp_path):
    """The first context after a fork restarts the writer (a new thread, a new connection:
    allocations) under a process-wide lock; a finalizer run there that records a context
    reaches the same restart.  It is dropped (counted), never waited for."""
    from otrace.contexts.record import TraceContext
    from otrace.contexts.sqlite_writer import PickleWriter

    writer = PickleWriter(tmp_path / "ctx.db")
    ctx = TraceContext("traces", "f", "x", {"a": 1}, {})
    inner = TraceContext("traces", "g", "y", {"b": 2}, {})
    abandon = writer.abandon

    def abandon_with_a_finalizer():  # a collection inside the restart runs a finalizer
        writer.submit(inner)
        abandon()

    writer.abandon = abandon_with_a_finalizer  # type: ignore[method-assign]
    writer._pid = -1  # as if forked: this process is not the one that opened it
    from otrace.contexts import writer_thread

    try:
        assert _finishes(lambda: writer.submit(ctx)), "the restart waited for itself"
        assert writer.flush(10)
        assert writer.stats()["written"] == 1  # the outer one (the restart resets the counts)
    finally:
        if writer_thread._REOPEN.locked():
            writer_thread._REOPEN.release()
        writer.close()


# -- compiling a wrapper's inline condition --------------------------------------------------------


def test_a_finalizer_tracing_while_a_condition_is_compiled_into_a_wrapper(runtime, monkeypatch):
    """``trace()`` may be called by program code; compiling a condition's inline tests
    allocates a lot (a collection may run a finalizer there), under the shapes' lock."""
    import types

    from otrace.tracing import instrument, trace, wrapper_inline

    monkeypatch.setattr(instrument, "FORCE_WRAPPER", True)
    monkeypatch.setattr(wrapper_inline, "_SHAPES", {})  # compile again (ids are kept)

    def f(a):
        return a

    def g(b, c=0):
        return b

    ns = types.SimpleNamespace(f=f, g=g)
    inner: list = []

    def reenter():
        if not inner:
            inner.append(trace(ns.g, ns, "g", condition="c==3", tracer=runtime.tracer))

    out = run_with_finalizers(
        lambda: trace(ns.f, ns, "f", condition="a==1", tracer=runtime.tracer),
        held=_owned(lambda: wrapper_inline._shapes_lock),
        reenter=reenter,
        unwedge=_release(wrapper_inline._shapes_lock),
        timeout=30,
    )
    assert out.points, "no point inside the lock: the test tested nothing"
    assert out.finished, f"deadlocked at {out.points[:1]}"
    assert not out.errors and inner
    assert ns.f(1) == 1 and ns.g(5, c=3) == 5
    assert [c.id.split(":")[0] for c in runtime.store.all.values()] == ["f", "g"]


# -- locks that are safe as they are (the reasons docs/architecture.rst gives) ---------------------


def test_a_finalizer_recording_while_the_store_adds_and_evicts(runtime):
    """The store's lock is re-entrant: a context recorded by a finalizer while another is
    added (and the oldest evicted) is kept consistently."""
    from otrace.contexts.record import TraceContext

    store = runtime.store
    runtime.params.set("max_recent", 3)
    n = iter(range(1000))

    def new():
        return TraceContext("tags", "f", f"n{next(n)}", {}, {})

    out = run_with_finalizers(
        lambda: [store.add(new()) for _ in range(5)],
        held=_owned(lambda: store._lock),
        reenter=lambda: store.add(new()),
        timeout=30,
    )
    assert out.points, "no point inside the lock: the test tested nothing"
    assert out.finished and not out.errors
    kept = store.under("recent")[0]
    assert len(kept) == 3 and set(store.all) == {c.id for c in kept}
    assert store.newest is max(kept, key=lambda c: c.created)


def test_nothing_under_a_trace_specs_count_lock_lets_a_finalizer_run(runtime):
    from otrace.tracing.engine import TraceSpec

    spec = TraceSpec("f", None, count=2)
    out = run_with_finalizers(
        lambda: [spec.take() for _ in range(3)],
        held=spec._lock.locked,
        reenter=spec.take,
        unwedge=_release(spec._lock),
    )
    assert out.finished and not out.points and not out.errors
    assert spec.traced == 2 and spec.matches == 2


def test_a_writer_reporting_from_a_finalizer_meets_the_said_already_path(tmp_path):
    """The only call under the report lock is the set's add: a finalizer run after it that
    reports the same trouble finds it said already, before the lock."""
    from otrace.contexts.sqlite_writer import PickleWriter

    said: list[str] = []
    writer = PickleWriter(tmp_path / "ctx.db", report=said.append)
    try:
        out = run_with_finalizers(
            lambda: writer.report("queue", "full"),
            held=writer._lock.locked,
            reenter=lambda: writer.report("queue", "full"),
            unwedge=_release(writer._lock),
        )
        assert out.finished and not out.errors and len(said) == 1
    finally:
        writer.close()


# -- the shell's shutdown, also SIGTERM's handler -------------------------------------------------


def test_a_sigterm_handler_shutting_the_shell_down_while_it_shuts_down():
    """``otrace`` (the command) shuts the shell down from a SIGTERM handler, which may run on
    the main thread while that thread is in ``shutdown()`` already."""
    from otrace import OShell

    sh = OShell(allow_unsafe=True, no_input=True, banner="")
    out = run_with_finalizers(
        sh.shutdown,
        held=sh._shutdown_lock.locked,
        reenter=sh.shutdown,
        unwedge=_release(sh._shutdown_lock),
        timeout=10,
    )
    assert out.finished, f"deadlocked at {out.points[:1]}"
    assert not out.points and not out.errors and sh.is_shut_down


# -- process-wide registries filled while a runtime or a db hook is first made --------------------


def test_a_finalizer_building_the_default_runtime_while_a_runtime_registers_its_exec_hold():
    """Every runtime's exec hold is registered in a process-wide set as the runtime is built;
    a finalizer run there that uses otrace for the first time builds the default runtime."""
    from otrace.tracing import exec_hold

    made: list = []
    out = run_with_finalizers(
        lambda: made.append(exec_hold.ExecHold(print)),
        held=_owned(lambda: exec_hold._all_lock),
        reenter=lambda: made.append(exec_hold.ExecHold(print)),
        unwedge=_release(exec_hold._all_lock),
        timeout=10,
    )
    assert out.points, "no point inside the lock: the test tested nothing"
    assert out.finished, f"deadlocked at {out.points[:1]}"
    assert not out.errors and all(h in exec_hold._all for h in made)


def test_a_finalizer_accessing_traced_data_while_a_db_key_table_is_first_made():
    from otrace.runtime import Runtime
    from otrace.tracing import dbkeys

    first, second = Runtime(), Runtime()
    tables: list = []
    out = run_with_finalizers(
        lambda: tables.append(dbkeys._table(first.tracer)),
        held=_owned(lambda: dbkeys._tables_lock),
        reenter=lambda: tables.append(dbkeys._table(second.tracer)),
        unwedge=_release(dbkeys._tables_lock),
        timeout=10,
    )
    assert out.points, "no point inside the lock: the test tested nothing"
    assert out.finished, f"deadlocked at {out.points[:1]}"
    assert not out.errors
    assert dbkeys._table(first.tracer) is tables[-1] and dbkeys._table(second.tracer) in tables
