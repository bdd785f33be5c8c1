"""No program thread (nor the loop) waits without bound for a lock one of otrace's threads holds.

While an otrace thread (the shell's worker, a writer) holds a lock across allocations, a
collection may run a program's finalizer there, and that finalizer may wait for a lock the
program thread holds -- the program thread waiting for otrace's lock would then never get it.
Each lock either makes its otrace side call-free (no point inside it where a finalizer could
run: ``finalizer_points``) or bounds the program side's wait, with a degraded path after it.

The bounded ones are tested for real: the otrace side is wedged in its section as such a
finalizer would be (a function it calls there waits for the program thread's lock), and the
program thread must get on within a bound.  See docs/architecture.rst, "Locks and finalizers".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from tests.safety.finalizer_points import run_with_finalizers

pytestmark = pytest.mark.timeout(120)


class Wedge:
    """Make ``owner.name`` -- a function the otrace side calls inside its locked section --
    wait first, as a finalizer run there would, for a lock the program thread holds."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
        self.program_lock = threading.Lock()
        self.inside = threading.Event()  # the otrace side is in its section, waiting
        original = getattr(owner, name)

        def point(*args: Any, **kwargs: Any) -> Any:
            if not self.inside.is_set():
                self.inside.set()
                with self.program_lock:  # the "finalizer": needs the program thread's lock
                    pass
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, point)

    def run(
        self, otrace_side: Callable[[], Any], program_side: Callable[[], Any], bound: float = 20
    ) -> tuple[bool, Any, Any]:
        """Run ``otrace_side`` on one thread, wedged in its section, and ``program_side`` on
        another holding the program's lock; (the program side finished within ``bound``,
        its result or exception, the otrace side's)."""
        box: dict[str, Any] = {}
        held = threading.Event()

        def program() -> None:
            self.program_lock.acquire()
            held.set()
            try:
                if not self.inside.wait(10):
                    raise AssertionError("the otrace side never reached its section")
                box["program"] = program_side()
            except BaseException as exc:  # noqa: B036 - handed to the test
                box["program"] = exc
            finally:
                if self.program_lock.locked():  # (else the test freed it, unwedging)
                    self.program_lock.release()

        def otrace() -> None:
            try:
                box["otrace"] = otrace_side()
            except BaseException as exc:  # noqa: B036 - handed to the test
                box["otrace"] = exc

        p = threading.Thread(target=program, name="program", daemon=True)
        o = threading.Thread(target=otrace, name="otrace-side", daemon=True)
        p.start()
        assert held.wait(10)
        o.start()
        p.join(bound)
        finished = not p.is_alive()
        if not finished:  # the old deadlock: free both (a plain lock may be released here)
            self.program_lock.release()
            p.join(10)
        o.join(10)
        assert not o.is_alive(), "the otrace side did not finish once the program's lock was free"
        return finished, box.get("program"), box.get("otrace")


# -- the context store: a program thread records while the shell lists or saves -------------


def _ctx(label: str):
    from otrace.contexts.record import TraceContext

    return TraceContext("traces", "f", label, {}, {})


def test_a_context_recorded_while_the_shell_lists_is_dropped_not_waited_for(runtime, monkeypatch):
    from otrace.contexts import store as store_module

    store = runtime.store
    store.add(_ctx("before"))
    wedge = Wedge(monkeypatch, store_module, "_glob")  # called under the lock by under()
    finished, added, listed = wedge.run(
        lambda: store.under("recent", ("traces",)), lambda: store.add(_ctx("during"))
    )
    assert finished, "the program thread waited for the shell's listing without bound"
    assert added is None and store.dropped == 1
    assert [c.ctxid for c in listed[0]] == ["tr-before"]
    store.add(_ctx("after"))  # the lock is free again: filed as usual
    assert [c.ctxid for c in store.under("recent")[0]] == ["tr-before", "tr-after"]


def test_a_break_that_cannot_be_filed_is_released_not_left_waiting(runtime, monkeypatch):
    from otrace.contexts import store as store_module

    released: list[bool] = []

    class Live:
        def release(self) -> None:
            released.append(True)

    ctx = _ctx("a break")
    ctx.live = Live()
    wedge = Wedge(monkeypatch, store_module, "_put")  # called under the lock by save()
    finished, _added, _saved = wedge.run(
        lambda: runtime.store.save(_ctx("saved by the shell")), lambda: runtime.store.add(ctx)
    )
    assert finished
    assert released == [True] and runtime.store.dropped == 1
    assert ctx.id not in runtime.store.all


def test_a_context_saved_from_program_code_while_the_shell_saves(runtime, monkeypatch):
    from otrace.contexts import store as store_module

    store = runtime.store
    mine = _ctx("mine")
    store.add(mine)
    wedge = Wedge(monkeypatch, store_module, "_put")
    finished, saved, _ = wedge.run(lambda: store.save(_ctx("shell's")), lambda: store.save(mine))
    assert finished and saved is False and store.dropped == 1
    assert mine.live is None and not store.is_saved(mine)


# -- the holds table: a program thread breaks while the shell resumes ------------------------


def test_a_break_while_the_shell_resumes_is_refused_not_waited_for(runtime, monkeypatch):
    from otrace.contexts.record import TraceContext
    from otrace.holds import table

    holds = runtime.holds
    waiting = TraceContext("breaks", "f", "waiting", {}, {})
    holds.new_break(waiting)
    late = TraceContext("breaks", "g", "late", {}, {})
    wedge = Wedge(monkeypatch, holds, "_claim")  # called under the lock by the release
    finished, item, resumed = wedge.run(
        lambda: holds.resume(waiting), lambda: holds.new_break(late)
    )
    assert finished, "a new break waited for the shell's resume without bound"
    assert resumed is True and waiting.live is None
    assert item.released == table.REFUSED and item.event.is_set()  # its thread would go on
    assert late.live is None and late.trc["released"] == table.REFUSED and len(holds) == 0


def test_the_shell_gives_up_on_a_holds_table_a_wedged_thread_holds(runtime, monkeypatch):
    """The other way round: a thread stuck under the table's lock (a finalizer waiting for a
    lock the shell's thread holds) must not hang the console -- listing, ``resume *`` and
    the release at shutdown wait SHELL_WAIT at most, then say so."""
    from otrace.contexts.record import TraceContext
    from otrace.holds import TableBusy, table

    monkeypatch.setattr(table, "SHELL_WAIT", 0.3)
    holds = runtime.holds
    waiting = TraceContext("breaks", "f", "waiting", {}, {})
    holds.new_break(waiting)
    wedged, free = threading.Event(), threading.Event()

    def stuck() -> None:
        with holds._lock:
            wedged.set()
            free.wait(30)

    holder = threading.Thread(target=stuck, daemon=True)
    holder.start()
    assert wedged.wait(10)
    box: dict[str, Any] = {}

    def shell() -> None:
        for name, call in (
            ("pending", holds.pending),
            ("resume_many", lambda: holds.resume_many([waiting])),
            ("release_all", holds.release_all),
        ):
            try:
                box[name] = call()
            except TableBusy as exc:
                box[name] = str(exc)

    try:
        console = threading.Thread(target=shell, daemon=True)
        console.start()
        console.join(20)
        assert not console.is_alive(), "the shell waited for the holds table without bound"
    finally:
        free.set()
        holder.join(10)
    assert box["pending"].startswith("listing the holds: the holds table stayed busy for 0.3s")
    assert box["resume_many"].startswith("resume: the holds table stayed busy")
    assert box["release_all"] == 0
    assert holds.pending() == [waiting] and waiting.live is not None  # nothing was done
    assert holds.resume_many([waiting]) == [waiting] and waiting.live is None


# -- the trace registry: a program thread traces (or a count runs out) while the shell traces --


def _module_with(*names: str):
    import types

    mod = types.ModuleType("waits_prog")
    for name in names:
        exec(f"def {name}(x):\n    return x + 1\n", mod.__dict__)
    return mod


def test_trace_from_program_code_while_the_shell_traces_raises_instead_of_waiting(
    runtime, monkeypatch
):
    from otrace.errors import TraceError
    from otrace.tracing import api, registry

    monkeypatch.setattr(registry, "WAIT", 0.2, raising=False)  # (absent before the bound)
    mod = _module_with("shells", "programs")
    wedge = Wedge(monkeypatch, api, "_install")  # called under the registry lock by trace()
    finished, mine, shells = wedge.run(
        lambda: api.trace(mod.shells, mod, "shells", tracer=runtime.tracer),
        lambda: api.trace(mod.programs, mod, "programs", tracer=runtime.tracer),
    )
    assert finished, "trace() from program code waited for the shell without bound"
    assert isinstance(mine, TraceError) and "busy" in str(mine)
    assert not isinstance(shells, BaseException)
    assert [s.key for s in runtime.tracer.specs()] == ["shells"]  # nothing of the refused one


def test_new_code_for_a_traced_function_while_the_registry_is_busy_changes_nothing(
    runtime, monkeypatch
):
    """``edit`` of a traced function sets its attributes and code under the registry's lock:
    refused (busy), none of them has changed."""
    from otrace.errors import TraceError
    from otrace.tracing import api, instrument, registry

    monkeypatch.setattr(registry, "WAIT", 0.2)
    mod = _module_with("edited")
    func = mod.edited  # (the function itself: traced in place, or behind a wrapper)
    api.trace(func, mod, "edited", tracer=runtime.tracer)
    code, defaults = func.__code__, func.__defaults__
    new = _module_with("edited").edited
    held, done = threading.Event(), threading.Event()

    def shell() -> None:
        with runtime.tracer.lock:
            held.set()
            done.wait(10)

    t = threading.Thread(target=shell, daemon=True)
    t.start()
    try:
        assert held.wait(10)
        with pytest.raises(TraceError, match="busy"):
            instrument.set_code(func, new.__code__, attrs={"__defaults__": (5,)})
        assert func.__code__ is code and func.__defaults__ == defaults
    finally:
        done.set()
        t.join(10)
    instrument.set_code(func, new.__code__, attrs={"__defaults__": (5,)})
    assert func.__defaults__ == (5,) and mod.edited() == 6


def test_a_trace_count_running_out_while_the_shell_traces_does_not_wait(runtime, monkeypatch):
    from otrace.tracing import api

    mod = _module_with("counted", "other")
    api.trace(mod.counted, mod, "counted", condition="call", count=1, tracer=runtime.tracer)
    wedge = Wedge(monkeypatch, api, "_install")
    finished, result, _ = wedge.run(
        lambda: api.trace(mod.other, mod, "other", tracer=runtime.tracer),
        lambda: mod.counted(1),  # the traced call that uses up the count
    )
    assert finished, "a traced call whose count ran out waited for the shell without bound"
    assert result == 2
    spent = runtime.tracer.get_spec("counted")
    assert spent is not None and not spent.active  # left registered, inactive
    assert mod.counted(1) == 2 and spent.traced == 1  # and traces nothing more
    api.untrace("counted", tracer=runtime.tracer)
    assert runtime.tracer.get_spec("counted") is None


# -- the SQLite writer's I/O lock: os.fork waits for it ----------------------------------------


def test_fork_waits_for_a_wedged_sqlite_write_only_boundedly(tmp_path, monkeypatch):
    import os

    from otrace.contexts import writer_thread
    from otrace.contexts.sqlite_writer import PickleWriter

    writer = PickleWriter(tmp_path / "ctx.db")
    wedge = Wedge(monkeypatch, writer, "write_rows")  # called under the I/O lock

    def fork_and_report() -> str:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: say whether its writer would write, then leave at once
            try:
                writer.submit(_ctx("in the child"))
                os.write(write, b"dropped %d" % writer.stats()["dropped"])
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        with os.fdopen(read, "rb") as f:
            return f.read().decode()

    try:
        finished, said, _ = wedge.run(
            lambda: writer.submit(_ctx("written")) or writer.flush(20),
            fork_and_report,
        )
        assert finished, "os.fork waited for the writer's I/O lock without bound"
        assert said == "dropped 1"  # the child forked mid-write writes nothing
        assert not writer_thread._UNFENCED and writer._unfenced is False  # (the parent)
    finally:
        writer.close()


# -- call-free otrace sides: no point where a finalizer could run while they hold the lock ------


def _owned(lock: Any) -> Callable[[], bool]:
    return lambda: lock._is_owned() if hasattr(lock, "_is_owned") else lock.locked()


def test_nothing_under_the_hold_rules_lock_lets_a_finalizer_run_on_the_shells_side(runtime):
    rules = runtime.hold_rules

    def shell():
        one = rules.add("True", {})
        rules.add("False", {}, count=2)
        rules.remove(one.number)
        rules.remove()

    out = run_with_finalizers(shell, held=rules._lock.locked, timeout=10)
    assert out.finished and not out.errors
    assert not out.points, f"a finalizer could run at {out.points[:3]}"
    assert rules.rules == ()


def test_nothing_under_the_patch_tables_lock_lets_a_finalizer_run_on_the_shells_side(runtime):
    import types

    from otrace.tracing import patching

    mod = types.ModuleType("waits_patched")
    exec("def f():\n    return 1\n", mod.__dict__)
    table = runtime.patches

    def shell():
        patching.patch(mod, "f", "def f():\n    return 2\n", table=table)
        assert mod.f() == 2
        patching.unpatch("f", table=table)
        assert mod.f() == 1

    out = run_with_finalizers(shell, held=_owned(table.lock), timeout=30)
    assert out.finished and not out.errors, out.errors
    assert not out.points, f"a finalizer could run at {out.points[:3]}"
    assert not table.busy and "f" not in table.patches


def test_nothing_under_the_bridges_lock_lets_a_finalizer_run_on_the_shells_side():
    from otrace.web.bridge import Connection, WebBridge

    bridge = WebBridge()
    conn = Connection.__new__(Connection)
    conn.name, conn.pending, conn.closed, conn.logs_wanted = "alice", {}, False, False
    sent: list[Any] = []
    conn.send = sent.append  # type: ignore[method-assign]
    bridge._conns = {"alice": conn}

    def shell():
        assert bridge.names() == ["alice"]
        assert bridge.connection("alice") is conn
        fut = bridge.submit("alice", "1 + 1")
        fut.cancel()  # its done-callback forgets it (the shell's thread here)

    out = run_with_finalizers(shell, held=bridge._lock.locked, timeout=10)
    assert out.finished and not out.errors, out.errors
    assert not out.points, f"a finalizer could run at {out.points[:3]}"
    assert conn.pending == {} and len(sent) == 1
