"""/osh/requests, /osh/tasks, hold -c, resume --raise/--value, await at the prompt, stalls.

Real Tornado servers on free ports, real HTTP clients; the handlers (requests_app) know
nothing about otrace.
"""

from __future__ import annotations

import asyncio
import io
import re
import threading
from typing import Any

import pytest
import requests_app
from tornado_helpers import Server, wait_for

import otrace
import otrace.tornado as otornado
from otrace import holds
from otrace.vfs.asyncview import await_chain, where
from tests.rt import PARAMS, STORE

pytestmark = pytest.mark.timeout(90)

REQUESTS: Any = None  # the test's runtime's request table (set by app_server)


@pytest.fixture
def app_server(runtime):
    global REQUESTS
    REQUESTS = runtime.requests
    requests_app.RELEASE.clear()
    requests_app.SEEN.clear()
    srv = Server(requests_app.make_app).start()
    yield srv
    requests_app.RELEASE.set()
    runtime.hold_rules.remove()
    holds.release_all("shutdown")
    srv.stop()
    otornado.detach()


@pytest.fixture
def shell():
    g = {"__name__": "requests_test", "app": requests_app, "asyncio": __import__("asyncio")}
    sh = otrace.OShell(
        g, g, allow_unsafe=True, _stdin=io.StringIO(), _stdout=io.StringIO(), _stderr=io.StringIO()
    )
    yield sh
    sh.shutdown()


def run(sh, line: str) -> str:
    out, err = sh.execute(line)
    assert not err, (line, out, err)
    return out.rstrip("\n")


def slow_requests_waiting(count: int) -> bool:
    """``count`` requests running, each suspended at SLOW-AWAIT.  A request is listed from the
    call of its ``_execute`` on, before its task has even started (then it shows "web.py:N in
    _execute"); a handler at its await stays there until RELEASE is set."""
    at = f"requests_app.py:{requests_app.line_of('SLOW-AWAIT')} in get"
    recs = REQUESTS.running()
    return len(recs) == count and all(where(await_chain(rec.coro)) == at for rec in recs)


def test_fifty_slow_requests_listed_with_their_await_point(app_server, shell):
    clients = [app_server.get_in_thread(f"/slow?n={i}") for i in range(50)]
    assert wait_for(lambda: slow_requests_waiting(50), 20)
    run(shell, "cd /osh/requests")
    out = run(shell, "ls -l")
    line = requests_app.line_of("SLOW-AWAIT")
    rows = [r for r in out.splitlines() if re.match(r"r\d+ ", r)]
    assert len(rows) == 50, out
    for i in range(50):
        (row,) = [r for r in rows if f"GET /slow?n={i} " in r]
        assert "SlowHandler" in row and "127.0.0.1" in row, row
        assert f"requests_app.py:{line} in get" in row, row
    # the same lines with the paths given (ls lists the operands, as ls -d)
    out = run(shell, "ls -l /osh/requests/r*")
    assert len([r for r in out.splitlines() if r.startswith("/osh/requests/r")]) == 50, out
    assert out.count(f"requests_app.py:{line} in get") == 50
    requests_app.RELEASE.set()
    for thread, result in clients:
        thread.join(10)
        assert result["response"][0] == 200
    assert wait_for(lambda: not REQUESTS.active)
    out = run(shell, "cdls /osh/requests/done -l")
    assert "status 200" in out and out.count("GET /slow") == PARAMS.max_recent, out


def test_browse_a_requests_handler_and_frame(app_server, shell):
    thread, result = app_server.get_in_thread("/slow?n=7")
    assert wait_for(lambda: slow_requests_waiting(1))
    (rec,) = REQUESTS.running()
    run(shell, f"cd /osh/requests/{rec.id}")
    out = run(shell, "ls")
    assert all(name in out for name in ("handler", "request", "frame", "awaiting")), out
    assert run(shell, "pr handler.request.uri") == "/slow?n=7"
    assert run(shell, "pr request.remote_ip") == "127.0.0.1"
    out = run(shell, "pr awaiting")
    assert "in _execute" in out and "in get" in out and "locks.py" in out, out
    run(shell, "cd frame")
    assert run(shell, "pr n") == "7"
    assert "SlowHandler object" in run(shell, "pr self")
    # the request ends: the directory goes stale with one clear line
    requests_app.RELEASE.set()
    thread.join(10)
    assert wait_for(lambda: not REQUESTS.active)
    out, err = shell.execute("ls")
    assert "Stale directory" in err and "\n" not in err.strip(), err
    assert f"request {rec.id} has finished (see /osh/requests/done/{rec.id})" in err
    out, err = shell.execute(f"cd /osh/requests/{rec.id}")
    assert "No such entry" in err, err
    out = run(shell, f"ls -l /osh/requests/done/{rec.id}")
    assert "GET /slow?n=7  SlowHandler  127.0.0.1" in out and "status 200" in out, out
    assert app_server.get("/chained?amount=x1")[0] == 500
    out = run(shell, "cdls /osh/requests/done -l")
    assert "GET /chained?amount=x1  ChainedHandler" in out and "status 500  RuntimeError" in out
    out = run(shell, f"cdls /osh/requests/done/{rec.id} -l")
    assert re.search(r"status +  = 200", out) and re.search(r"exception +  = None", out), out
    assert "uri           = '/slow?n=7'" in out, out


def test_hold_by_header_while_others_are_served(app_server, shell):
    run(shell, "set safe_mode False")
    out, err = shell.execute("hold -c True")
    assert "would hold every request" in err and "-n" in err, err
    out = run(shell, """hold -c 'request.headers.get("X-Debug") == "me"' --timeout=30""")
    assert "Holding #" in out
    thread, result = app_server.get_in_thread("/hello/pay", headers={"X-Debug": "me"})
    assert wait_for(holds.pending)
    (ctx,) = holds.pending()
    assert ctx.kind == "holds" and ctx.id.startswith("HelloHandler.get:hd-c"), ctx.id
    for i in range(10):  # others go on
        assert app_server.get(f"/hello/other{i}") == (200, f"hello /hello/other{i}\n")
    assert "/hello/pay" not in requests_app.SEEN and thread.is_alive()
    run(shell, "cd ~~")
    assert run(shell, "pr request.uri") == "/hello/pay"
    assert run(shell, "pr self.request.headers['X-Debug']") == "me"
    out = run(shell, "resume")
    assert out.startswith("Resuming HelloHandler.get")
    thread.join(10)
    assert result["response"] == (200, "hello /hello/pay\n")
    assert ctx.trc["released"] == "resumed"
    run(shell, "unhold")
    assert app_server.get("/hello/again", headers={"X-Debug": "me"})[0] == 200


def test_resume_raise_and_timeout_and_count(app_server, shell):
    run(shell, "set safe_mode False")
    run(shell, "hold -c 'request.uri.startswith(\"/hello/fail\")' -n 1")
    thread, result = app_server.get_in_thread("/hello/fail")
    assert wait_for(holds.pending)
    (ctx,) = holds.pending()
    assert run(shell, "hold") == "No hold rules"  # -n 1: used up
    run(shell, "!import tornado.web")
    out = run(shell, f"resume --raise 'tornado.web.HTTPError(503)' {ctx.id}")
    assert "with HTTPError" in out
    thread.join(10)
    assert result["response"][0] == 503
    assert "/hello/fail" not in requests_app.SEEN
    # --timeout resumes by itself
    run(shell, "hold -c 'request.uri == \"/hello/late\"' --timeout 0.3")
    thread, result = app_server.get_in_thread("/hello/late")
    assert wait_for(holds.pending)
    (ctx,) = holds.pending()
    thread.join(10)
    assert result["response"] == (200, "hello /hello/late\n")
    assert ctx.trc["released"] == "timeout"


def test_resume_value_for_a_traceassert_hold(app_server, shell):
    run(shell, "set safe_mode False")
    PARAMS.trace_active = True
    thread, result = app_server.get_in_thread("/value")
    assert wait_for(holds.pending)
    (ctx,) = holds.pending()
    out, err = shell.execute(f"resume --value 1 --raise KeyError {ctx.id}")
    assert "not both" in err
    out = run(shell, f"resume --value '{{\"answer\": 6 * 7}}' {ctx.id}")
    assert out.startswith("Resuming ValueHandler.get:hd-want_value")
    thread.join(10)
    assert result["response"] == (200, "got {'answer': 42}\n")


def test_bad_conditions_never_break_a_request(app_server, shell):
    run(shell, "set safe_mode False")
    run(shell, "hold -c 'request.no_such_attribute == 1'")
    out = run(shell, 'hold -c \'__import__("time").sleep(0.2) or request.uri == "/hello/x"\'')
    for i in range(3):
        assert app_server.get(f"/hello/{i}")[0] == 200
    assert holds.pending() == []
    out = run(shell, "hold")
    assert "AttributeError" in out and "took" in out, out
    # a rule limited to other handlers leaves this one alone; unhold by number
    out = run(shell, "hold -c 'request.uri == \"/hello/only\"' SlowHandler")
    number = out.split("#")[1].split()[0]
    assert app_server.get("/hello/only")[0] == 200 and holds.pending() == []
    assert f"Removed hold rule #{number}" in run(shell, f"unhold {number}")
    out, err = shell.execute(f"unhold {number}")
    assert f"no hold rule #{number}" in err
    assert "Removed hold rule" in run(shell, "unhold")
    assert run(shell, "hold") == "No hold rules"


def test_await_in_globals_and_in_a_held_frame(app_server, shell):
    run(shell, "set safe_mode False")
    assert run(shell, "await asyncio.sleep(0.1, 'slept')") == "slept"
    assert run(shell, "await app.lookup('k1')") == "value-of-k1"
    run(shell, "!x = await app.lookup('k2')")
    assert run(shell, "pr x") == "value-of-k2"
    thread, result = app_server.get_in_thread("/slow?n=3")
    run(shell, "hold -c 'request.uri == \"/hello/held\"'")
    held_thread, held_result = app_server.get_in_thread("/hello/held")
    assert wait_for(holds.pending)
    run(shell, "cd ~~")
    assert run(shell, "await app.lookup(request.uri)") == "value-of-/hello/held"
    # the server keeps serving while an await runs at the prompt
    answer: dict = {}
    waiter = threading.Thread(
        target=lambda: answer.update(out=shell.execute("await asyncio.sleep(2, request.uri)")),
        daemon=True,
    )
    waiter.start()
    assert wait_for(lambda: any("run_async" in repr(t.get_coro()) for t in _tasks(app_server)))
    for i in range(5):
        assert app_server.get(f"/hello/free{i}")[0] == 200
    assert waiter.is_alive()  # those were served while the await was still waiting
    waiter.join(10)
    assert answer["out"] == ("/hello/held\n", "")
    PARAMS.await_timeout = 0.3
    out, err = shell.execute("await asyncio.sleep(5)")
    assert "did not finish within 0.3s" in err, err
    run(shell, "resume")
    held_thread.join(10)
    assert held_result["response"][0] == 200
    requests_app.RELEASE.set()
    thread.join(10)


def _tasks(server) -> list:
    return otornado.run_on_loop(asyncio.all_tasks, loop=server.loop)


def test_hold_and_resume_refusals_without_a_server(shell):
    out, err = shell.execute("""hold -c 'request.headers.get("X-Debug") == "me"'""")
    assert "calls are not permitted in safe mode" in err, err
    out, err = shell.execute("hold -c 'request.uri =='")  # invalid text in safe mode: one line
    assert "invalid condition" in err and "internal error" not in err, err
    out, err = shell.execute("resume --raise KeyError")
    assert "set safe_mode False" in err, err
    run(shell, "set safe_mode False")
    out, err = shell.execute("hold -c 'request.uri =='")
    assert "invalid condition" in err, err
    out, err = shell.execute("hold -n 2")
    assert "give -c CONDITION" in err, err
    out, err = shell.execute("""hold -c 'request.headers.get("X-Debug") == "me"'""")
    assert out.startswith("Holding #") and "no server tracks requests yet" in err, (out, err)
    out, err = shell.execute("hold -c 'request.uri == 1' --timeout 0")
    assert "positive number of seconds" in err, err
    out, err = shell.execute("cancel Task-no-such")
    assert "no task 'Task-no-such'" in err, err


def test_await_needs_unsafe_mode_and_a_loop(shell):
    out, err = shell.execute("await asyncio.sleep(0)")
    assert "not permitted in safe mode" in err, err
    run(shell, "set safe_mode False")
    holds.set_eventloop_callback(None)
    out, err = shell.execute("await asyncio.sleep(0)")
    assert "await needs the program's event loop" in err, err


def test_tasks_listed_and_cancelled(app_server, shell):
    thread, result = app_server.get_in_thread("/slow?n=9")
    assert wait_for(lambda: slow_requests_waiting(1))
    (rec,) = REQUESTS.running()
    out = run(shell, "cdls /osh/tasks -l")
    (row,) = [r for r in out.splitlines() if f"request {rec.id}" in r]
    assert row.split("=", 1)[1].strip().startswith("pending") and "in get" in row, row
    name = row.split()[0]
    run(shell, f"cd /osh/tasks/{name}/frame")
    assert run(shell, "pr n") == "9"
    out, err = shell.execute(f"cancel {rec.id}")
    assert "not permitted in safe mode" in err
    run(shell, "set safe_mode False")
    out = run(shell, f"cancel {rec.id}")
    assert "? [y/N]" in out
    assert "Not cancelled" in run(shell, "n")
    run(shell, f"cancel {rec.id}")
    assert "Cancelling" in run(shell, "y")
    thread.join(10)
    assert wait_for(lambda: not REQUESTS.active)
    out, err = shell.execute(f"cancel {rec.id}")
    assert "has already finished" in err, err


def test_stall_recorded_with_the_blocking_line(app_server, shell):
    run(shell, "set stall_ms 100")
    assert app_server.get("/block") == (200, "blocked\n")
    assert wait_for(lambda: STORE.recent.get("stalls"))
    (ctx,) = [c for c in STORE.all.values() if c.kind == "stalls"]
    assert ctx.name == "BlockingHandler.get", ctx.id
    assert "_execute" in ctx.trc["running"], ctx.trc["running"]  # the request's task
    line = requests_app.line_of("BLOCKING-LINE")
    assert any(f[1] == line and f[2] == "get" for f in ctx.trc["framestack"]), ctx.trc["framestack"]
    assert ctx["blocked_for"] == 0.3
    assert wait_for(lambda: "stalled_ms" in ctx.trc)
    assert 250 <= ctx.trc["stalled_ms"] < 1000, ctx.trc["stalled_ms"]
    run(shell, f"cd ~{ctx.id}")
    assert run(shell, "pr blocked_for") == "0.3"
    run(shell, "set stall_ms 0")
    assert app_server.get("/block")[0] == 200
    assert len([c for c in STORE.all.values() if c.kind == "stalls"]) == 1
