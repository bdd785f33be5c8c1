"""Holds on a real Tornado server: held requests, other requests served, browse, resume."""

from __future__ import annotations

import io
import socket

import held_app as test_app
import pytest
from tornado_helpers import wait_for

import otrace
import otrace.tornado as otornado
from otrace import holds
from otrace.tracing import trace
from tests.rt import PARAMS, STORE


def make_shell() -> otrace.OShell:
    g = {"__name__": "tornado_test_app", "app": test_app}
    return otrace.OShell(
        g, g, allow_unsafe=True, _stdin=io.StringIO(), _stdout=io.StringIO(), _stderr=io.StringIO()
    )


def test_true_condition_continues_at_once(server):
    PARAMS.trace_active = True
    assert server.get("/?number=4") == (200, "reciprocal of 4 = 0.25\n")
    assert holds.pending() == []


def test_hold_browse_resume_while_others_are_served(server):
    shell = make_shell()
    out, err = shell.execute("set trace_active True")
    assert not err
    thread, result = server.get_in_thread("/?number=77")
    assert wait_for(holds.pending)
    (ctx,) = holds.pending()
    assert ctx.kind == "holds" and ctx.id.startswith("GetHandler.get:hd-hold_check:")
    assert "77" not in test_app.DONE
    # the server goes on serving, held request or not
    for n in range(20):
        assert server.get(f"/?number={n + 1}")[0] == 200
        assert server.get("/fast") == (200, "fast\n")
    assert thread.is_alive() and not result
    # browse the held frame from the shell
    shell.execute("cd /osh/recent/holds")
    out, err = shell.execute("ls")
    assert "GetHandler.get" in out, (out, err)
    out, err = shell.execute("cd ~~")
    assert not err, err
    out, err = shell.execute("ls")
    assert "number" in out and "self" in out, out
    out, err = shell.execute("pr number")
    assert "77" in out, (out, err)
    out, err = shell.execute("pr self.request.uri")
    assert "/?number=77" in out, (out, err)
    # resume from this (non-loop) thread: the request completes on the loop
    assert holds.resume(ctx.id)
    thread.join(10)
    assert result["response"] == (200, "reciprocal of 77 = 0.012987\n")
    assert ctx.trc["released"] == "resumed"
    assert STORE.get(ctx.id) is ctx  # kept, evictable, with its released reason
    shell.shutdown()


def test_many_holds_resumed_by_id_and_outlive_max_recent(server):
    PARAMS.trace_active = True
    PARAMS.max_recent = 3
    clients = [server.get_in_thread("/?number=77") for _ in range(12)]
    assert wait_for(lambda: len(holds.pending()) == 12)
    assert len(STORE.recent["holds"]["GetHandler.get"]["hd-hold_check"]) == 12
    ctxs = holds.pending()
    # resume every other one by id, the rest stay held
    for ctx in ctxs[::2]:
        assert holds.resume(ctx.id)
    assert wait_for(lambda: sum("response" in r for _, r in clients) == 6)
    assert len(holds.pending()) == 6 and all(c.live is not None for c in ctxs[1::2])
    assert server.get("/fast")[0] == 200
    assert all(holds.resume(c.id) for c in ctxs[1::2])
    for thread, result in clients:
        thread.join(10)
        assert result["response"][0] == 200
    assert not holds.resume(ctxs[0].id)  # already resumed


def test_trace_hold_on_async_method(server):
    trace(
        test_app.MethodHandler.compute,
        test_app.MethodHandler,
        "compute",
        condition="value==5",
        action="hold",
    )
    assert server.get("/method?value=4") == (200, "value 4\n")
    thread, result = server.get_in_thread("/method?value=5")
    assert wait_for(holds.pending)
    (ctx,) = holds.pending()
    assert ctx.kind == "holds" and ctx["value"] == 5
    assert server.get("/method?value=6") == (200, "value 6\n")
    assert holds.resume(ctx)
    thread.join(10)
    assert result["response"] == (200, "value 5\n")


def test_client_disconnect_releases_hold(server):
    PARAMS.trace_active = True
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET /?number=77 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert wait_for(holds.pending)
    (ctx,) = holds.pending()
    sock.close()
    assert wait_for(lambda: ctx.trc.get("released") == "disconnected")
    assert holds.pending() == [] and ctx.live is None
    assert wait_for(lambda: "77" in test_app.DONE)  # the handler went on (and wrote nothing)
    assert server.get("/fast")[0] == 200


def test_shutdown_releases_every_hold(server):
    shell = make_shell()
    shell.execute("set trace_active True")
    clients = [server.get_in_thread("/?number=77") for _ in range(5)]
    assert wait_for(lambda: len(holds.pending()) == 5)
    ctxs = holds.pending()
    shell.shutdown()
    assert holds.pending() == []
    assert all(c.trc["released"] == "shutdown" for c in ctxs)
    for thread, result in clients:
        thread.join(10)
        assert result["response"][0] == 200


def test_break_on_loop_thread_is_refused(server):
    announced: list[str] = []
    from otrace import log

    log.add_sink(announced.append)
    try:
        PARAMS.trace_active = True
        assert server.get("/break") == (200, "not blocked\n")
    finally:
        log.remove_sink(announced.append)
    assert holds.pending() == []
    assert any("break refused" in line and "hold" in line for line in announced), announced


def test_run_on_loop_from_another_thread(server):
    assert otornado.run_on_loop(holds.running_loop, loop=server.loop) is server.loop.asyncio_loop

    async def coro(x):
        return x * 2

    assert otornado.run_on_loop(coro, 21, loop=server.loop) == 42
    with pytest.raises(ZeroDivisionError):
        otornado.run_on_loop(lambda: 1 / 0, loop=server.loop)
    with pytest.raises(TimeoutError):
        otornado.run_on_loop(__import__("time").sleep, 1.0, loop=server.loop, timeout=0.1)
