"""The runtime: independent instances, the event bus, and the one recorder."""

from __future__ import annotations

import logging
import typing

import pytest

from otrace import holds, tracing
from otrace import runtime as rtmod
from otrace.events import (
    Announcement,
    ContextRecorded,
    ContextRemoved,
    EventBus,
    HoldRegistered,
    HoldReleased,
    ParamChanged,
    TraceChanged,
)
from otrace.params import TABLE, Params
from otrace.runtime import Runtime
from otrace.shell.session import Session


class Sample:
    def add(self, a: int, b: int = 2) -> int:
        return a + b

    def boom(self) -> None:
        raise KeyError("gone")


def test_each_test_has_its_own_default_runtime(runtime: Runtime) -> None:
    assert rtmod.default() is runtime


def test_two_runtimes_share_nothing() -> None:
    a, b = Runtime(), Runtime()
    a.params.set("max_recent", 7)
    assert b.params.max_recent != 7
    a.recorder.record("exceptions", "f", "KeyError", {})
    assert len(a.store.all) == 1 and b.store.all == {}
    sa, sb = Session({}, runtime=a), Session({}, runtime=b)
    try:
        assert sa.store is a.store and sb.store is b.store
        assert sa.params is a.params
    finally:
        sa.close()
        sb.close()


def test_tracing_on_a_private_runtime_records_there_only(runtime: Runtime) -> None:
    private = Runtime()
    seen: list[object] = []
    private.events.subscribe(ContextRecorded, seen.append)
    tracing.trace(Sample.boom, Sample, tracer=private.tracer)
    try:
        with pytest.raises(KeyError):
            Sample().boom()
    finally:
        private.close()
    assert [type(e) for e in seen] == [ContextRecorded]
    assert runtime.store.all == {}
    assert not hasattr(Sample.boom, "_otrace_site")


def test_events_of_a_trace_a_break_and_a_parameter(runtime: Runtime) -> None:
    got: list[object] = []
    for kind in (ContextRecorded, ContextRemoved, HoldRegistered, HoldReleased):
        runtime.events.subscribe(kind, got.append)
    for kind in (TraceChanged, ParamChanged, Announcement):
        runtime.events.subscribe(kind, got.append)
    ctx, live = runtime.recorder.record("breaks", "f", "x", {}, say=["hello"])
    assert isinstance(live, holds.Break)
    assert runtime.holds.resume(ctx)
    spec = tracing.trace(Sample.add, Sample, condition="a==1")
    tracing.untrace("Sample.add")
    names = [type(e).__name__ for e in got]
    # a resumed break stays in /osh/recent (an ordinary, evictable context): no removal
    assert names[:4] == ["HoldRegistered", "ContextRecorded", "Announcement", "HoldReleased"]
    assert "ContextRemoved" not in names
    assert TraceChanged("Sample.add", spec) in got and TraceChanged("Sample.add", None) in got
    assert ParamChanged("trace_active", False, True) in got
    assert ParamChanged("trace_active", True, False) in got


def test_a_failing_subscriber_is_reported_once_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    after: list[object] = []

    def bad(event: object) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(Announcement, bad)
    bus.subscribe(Announcement, after.append)
    with caplog.at_level(logging.ERROR, logger="otrace"):
        for _ in range(3):
            bus.emit(Announcement("x"))
    assert len(after) == 3
    assert bus.failures(bad) == 3
    assert sum("subscriber bug" in (r.exc_text or "") for r in caplog.records) == 1
    bus.unsubscribe(Announcement, bad)
    bus.emit(Announcement("y"))
    assert bus.failures(bad) == 3


def test_announcements_go_to_the_logger_without_subscribers(
    runtime: Runtime, capfd: pytest.CaptureFixture[str]
) -> None:
    # the program owns its stderr (issue 20): no console, no output, only the otrace logger
    seen: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    announce_log = logging.getLogger("otrace.announce")  # does not propagate: attach to it
    announce_log.addHandler(handler)
    old_level = announce_log.level
    announce_log.setLevel(logging.INFO)
    try:
        runtime.announce("nobody listens")
    finally:
        announce_log.removeHandler(handler)
        announce_log.setLevel(old_level)
    assert capfd.readouterr().err == ""
    assert seen == ["nobody listens"]
    said: list[str] = []
    runtime.add_sink(said.append)
    runtime.announce("now someone does")
    runtime.remove_sink(said.append)
    runtime.announce("gone again")
    assert said == ["now someone does"]
    assert capfd.readouterr().err == ""


def test_params_attributes_match_the_table() -> None:
    hints = typing.get_type_hints(Params)
    for p in TABLE:
        expected = p.type if not p.nullable else p.type | None
        assert hints[p.name] == expected, p.name
    assert {n for n in hints if not n.startswith("_")} == {p.name for p in TABLE}


def test_use_restores_the_previous_default(runtime: Runtime) -> None:
    with rtmod.use() as inner:
        assert rtmod.default() is inner
    assert rtmod.default() is runtime


def test_eviction_tells_of_each_context_that_goes(runtime: Runtime) -> None:
    """The oldest goes when one is added to a full kind; a saved one leaves ``recent`` but
    is not removed (it stays in ``saved`` and findable by id)."""
    runtime.params.set("max_recent", 2)
    removed: list[object] = []
    runtime.events.subscribe(ContextRemoved, lambda event: removed.append(event.ctx))
    made = [runtime.recorder.record("traces", "f", "x", {})[0] for _ in range(4)]
    assert removed == made[:2]
    assert list(runtime.store.all.values()) == made[2:]
    assert runtime.store.newest is made[3]
    runtime.store.save(made[2])
    later = [runtime.recorder.record("traces", "f", "x", {})[0] for _ in range(2)]
    assert removed == made[:2] + [made[3]]
    assert runtime.store.get(made[2].id) is made[2]
    assert set(runtime.store.recent["traces"]["f"]["tr-x"].values()) == set(later)
    assert runtime.store.newest is later[-1]
