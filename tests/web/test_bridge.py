"""The /osh/web bridge with plain websocket clients: many users, names, timeouts, garbage."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest
import tornado.httpclient
import tornado.web
from webbridge_helpers import Server, echo_answer, wait_for

from otrace import OShell, log
from otrace.web import bridge as web_bridge
from otrace.web.bridge import WebBridge, escape_name


def ws_url(server) -> str:
    return f"ws://127.0.0.1:{server.port}/chatsocket"


def join(clients, server, user, answer=echo_answer, bridge=None, url=None, **kw):
    """Connect a client and wait until the server side has registered it."""
    bridge = bridge or server.bridge
    before = len(bridge.names())
    conn = clients.connect(url or ws_url(server), user, answer, **kw)
    wait_for(lambda: len(bridge.names()) > before, what=f"{user} to register")
    return conn


def test_hundred_users_listed_and_each_answers(shell, chat_server, clients):
    names = [f"user{i}" for i in range(100)]
    for name in names:
        join(clients, chat_server, name, echo_answer)
    out, err = shell.execute("cd /osh/web; ls")
    assert not err
    assert sorted(out.split()) == sorted(names)
    for name in ("user0", "user57", "user99"):
        out, err = shell.execute(f"cd /osh/web/{name}")
        assert not err
        out, err = shell.execute('document.title + "x"')
        assert (out, err) == ('ran document.title + "x"\n', "")
    assert shell.session.prompt() == "web..user99> "


def test_duplicate_and_odd_names(shell, chat_server, clients):
    first = join(clients, chat_server, "dup", echo_answer)
    join(clients, chat_server, "dup", echo_answer)
    join(clients, chat_server, "a/b", echo_answer)
    join(clients, chat_server, "..", echo_answer)
    assert sorted(chat_server.bridge.names()) == sorted(["dup", "dup~2", "a%2Fb", "%2E%2E"])
    shell.execute("cd /osh/web/dup~2")
    assert shell.execute("1") == ("ran 1\n", "")
    shell.execute("cd /osh/web/a%2Fb")
    assert shell.execute("2") == ("ran 2\n", "")
    # the first dup leaves; a new one takes the free name, the other keeps its own
    clients.close(first)
    wait_for(lambda: "dup" not in chat_server.bridge.names(), what="dup to leave")
    join(clients, chat_server, "dup", echo_answer)
    assert {"dup", "dup~2"} <= set(chat_server.bridge.names())


def test_escape_name():
    assert escape_name("a/b%c") == "a%2Fb%25c"
    assert escape_name(".") == "%2E"
    assert escape_name("") == "%00"
    assert escape_name("~root") == "%7Eroot"


def test_connections_come_and_go_live(shell, chat_server, clients):
    conn = join(clients, chat_server, "carol", echo_answer)
    shell.execute("cd /osh/web")
    assert shell.execute("ls")[0].split() == ["carol"]
    shell.execute("cd carol")
    clients.close(conn)
    wait_for(lambda: not chat_server.bridge.names(), what="carol to leave")
    out, err = shell.execute("1+1")
    assert "carol is not connected" in err
    shell.execute("cd /osh/web")
    assert shell.execute("ls")[0].split() == []


def test_no_answer_times_out_and_shell_carries_on(shell, chat_server, clients):
    join(clients, chat_server, "silent", lambda msg: None)
    join(clients, chat_server, "chatty", echo_answer)
    shell.execute("set web_timeout 0.3")
    shell.execute("cd /osh/web/silent")
    out, err = shell.execute("1+1")
    assert err == "No answer from browser silent within 0.3s (web_timeout)\n"
    assert not chat_server.bridge.connection("silent").pending
    shell.execute("cd ../chatty")
    assert shell.execute("3") == ("ran 3\n", "")
    shell.execute("cd /osh/globals")
    assert shell.execute("[1] * 2") == ("[1, 1]\n", "")  # Python again


def test_garbage_answers(shell, chat_server, clients):
    def garbage(msg):
        code = msg["stdin"]
        if code == "notjson":
            return "this is not json"
        if code == "wrongtype":
            return json.dumps({"id": msg["id"], "stdout": {"an": "object"}})
        if code == "wrongid":
            return json.dumps({"id": [1, 2], "stdout": "x"})
        if code == "noid":  # the original glue: answers in order, without an id
            return json.dumps({"stdout": "old style", "stderr": ""})
        if code == "error":
            return json.dumps({"id": msg["id"], "stdout": "", "stderr": "ReferenceError: x"})
        return echo_answer(msg)

    join(clients, chat_server, "mallory", garbage)
    shell.execute("set web_timeout 0.3")
    shell.execute("cd /osh/web/mallory")
    out, err = shell.execute("wrongtype")
    assert err.startswith("Bad answer from browser mallory:")
    assert "No answer" in shell.execute("notjson")[1]
    assert "No answer" in shell.execute("wrongid")[1]
    assert shell.execute("noid") == ("old style\n", "")
    assert shell.execute("error") == ("", "ReferenceError: x\n")
    assert shell.execute("fine") == ("ran fine\n", "")


def test_disconnect_while_waiting_fails_at_once(shell, chat_server, clients, restore_params):
    conn = join(clients, chat_server, "leaver", lambda msg: None)
    shell.execute("set web_timeout 30")
    shell.execute("cd /osh/web/leaver")
    result = {}
    worker = threading.Thread(target=lambda: result.update(r=shell.execute("wait")))
    worker.start()
    wait_for(lambda: chat_server.bridge.connection("leaver").pending, what="the request")
    clients.close(conn)
    worker.join(5)
    assert not worker.is_alive()
    assert result["r"] == ("", "Browser leaver disconnected\n")


def test_safe_mode_refuses_javascript(shell, chat_server, clients):
    join(clients, chat_server, "dave", echo_answer)
    shell.execute("cd /osh/web/dave")
    shell.execute("set safe_mode True")  # set runs in the shell even here
    out, err = shell.execute("1+1")
    assert err == "Javascript console disabled in safe mode; set safe_mode False\n"


def test_unauthenticated_and_foreign_origin_refused(chat_server, clients):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        clients.connect(ws_url(chat_server), None, echo_answer)
    assert info.value.code == 403
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        clients.connect(
            ws_url(chat_server), "eve", echo_answer, headers={"Origin": "http://evil.example"}
        )
    assert info.value.code == 403
    join(clients, chat_server, "eve", headers={"Origin": f"http://127.0.0.1:{chat_server.port}"})
    assert chat_server.bridge.names() == ["eve"]


def test_ready_made_routes(clients, restore_params):
    """routes(): the bridge socket needs a user from get_user; the glue file is served."""
    bridge = WebBridge()

    def get_user(handler):
        return handler.get_query_argument("user", None)

    server = Server(lambda: tornado.web.Application(web_bridge.routes(bridge, "/dbg", get_user)))
    try:
        with urllib.request.urlopen(f"{server.url}/dbg/otrace-bridge.js") as resp:
            assert b"otrace" in resp.read()
        with pytest.raises(tornado.httpclient.HTTPClientError) as info:
            clients.connect(f"ws://127.0.0.1:{server.port}/dbg/ws", None)
        assert info.value.code == 403
        join(
            clients,
            server,
            None,
            bridge=bridge,
            url=f"ws://127.0.0.1:{server.port}/dbg/ws?user=zoe",
        )
        sh = OShell(web_interface=bridge, allow_unsafe=True, no_input=True, banner="")
        try:
            sh.execute("set safe_mode False")
            sh.execute("cd /osh/web/zoe")
            assert sh.execute("42") == ("ran 42\n", "")
        finally:
            sh.shutdown()
    finally:
        for conn in list(clients.conns):
            clients.close(conn)
        server.stop()


class LegacyInterface:
    """Only the original's class-method protocol (no evaluate), on top of a real bridge."""

    bridge: WebBridge

    @classmethod
    def root_depth(cls):
        return 1

    @classmethod
    def get_root_tree(cls):
        return cls.bridge.get_root_tree()

    @classmethod
    def set_web_hook(cls, hook):
        cls.bridge.set_web_hook(hook)

    @classmethod
    def send_command(cls, path_comps, command):
        cls.bridge.send_command(path_comps, command)

    @classmethod
    def trace_output(cls, repeat, path_comps, stdout, stderr=None):
        cls.bridge.trace_output(repeat, path_comps, stdout, stderr)


def test_original_web_interface_protocol(chat_server, clients, restore_params):
    LegacyInterface.bridge = chat_server.bridge
    join(clients, chat_server, "old", echo_answer)
    sh = OShell(web_interface=LegacyInterface, allow_unsafe=True, no_input=True, banner="")
    try:
        sh.execute("set safe_mode False")
        assert sh.execute("cd /osh/web; ls")[0].split() == ["old"]
        sh.execute("cd /osh/web/old")
        assert sh.execute("x") == ("ran x\n", "")
        # an unknown target is reported through trace_output with no path
        chat_server.bridge.tree["ghost"] = {}
        sh.execute("cd /osh/web/ghost")
        assert sh.execute("x") == ("", "No such socket: ghost\n")
    finally:
        chat_server.bridge.tree.pop("ghost", None)
        sh.shutdown()


def test_unasked_logs_are_announced_only_when_asked(chat_server, clients):
    seen = []
    log.add_sink(seen.append)
    try:
        conn = join(clients, chat_server, "logger", echo_answer)
        # not asked for: a page's console does not reach the operator
        clients.send(conn, json.dumps({"stdout": "", "stderr": "unasked", "log": "log"}))
        clients.send(conn, json.dumps({"stdout": "", "stderr": "hello?", "log": "log"}))
        chat_server.bridge.evaluate(["logger"], "1", 5.0)  # in order: those were handled
        chat_server.bridge.set_remotelog("logger", True)
        clients.send(conn, json.dumps({"stdout": "", "stderr": "hello", "log": "log"}))
        clients.send(conn, json.dumps({"stdout": "", "stderr": "old remote log"}))
        wait_for(lambda: len(seen) >= 2, what="announcements")
    finally:
        log.remove_sink(seen.append)
    assert seen == ["web logger [log]: hello", "web logger: old remote log"]


def test_unasked_logs_are_rate_and_size_limited(chat_server, clients):
    from otrace.web.bridge import LOG_BURST, LOG_TEXT

    seen = []
    log.add_sink(seen.append)
    try:
        conn = join(clients, chat_server, "flood", echo_answer)
        chat_server.bridge.set_remotelog("flood", True)
        for i in range(LOG_BURST * 10):
            clients.send(
                conn, json.dumps({"stdout": "", "stderr": f"m{i} " + "x" * 50_000, "log": "log"})
            )
        clients.send(conn, json.dumps({"stdout": "", "stderr": "y" * 3_000_000, "log": "log"}))
        big = len(seen)
        wait_for(lambda: len(seen) >= LOG_BURST, what="the first burst")
        # a marker answered after the flood shows every message was handled
        conn_answer = chat_server.bridge.evaluate(["flood"], "1", 5.0)
        assert conn_answer[1] == ""
    finally:
        log.remove_sink(seen.append)
    assert big <= len(seen) <= LOG_BURST + 5, len(seen)  # the burst, and a few refilled
    assert all(len(s) <= LOG_TEXT + 200 for s in seen)
    assert not any("y" * 100 in s for s in seen)


def test_refuses_to_wait_on_the_event_loop(chat_server, clients):
    join(clients, chat_server, "loopy", echo_answer)
    bridge = chat_server.bridge
    result = {}

    def on_loop():
        try:
            bridge.evaluate(["loopy"], "1", 1.0)
        except Exception as exc:
            result["err"] = str(exc)

    chat_server.loop.add_callback(on_loop)
    wait_for(lambda: result, what="the loop callback")
    assert result["err"] == "Cannot wait for a browser on the event-loop thread"


def test_demo_runs_as_a_program(tmp_path):
    """chat_websock.py --port/--addr serves the login page; shutdown in its console stops it."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen(
        [
            sys.executable,
            os.path.join(root, "tornademos", "chat_websock.py"),
            "--port",
            str(port),
            "--addr",
            "127.0.0.1",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONPATH=root, XDG_RUNTIME_DIR=str(tmp_path)),
        cwd=tmp_path,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(2)]  # banner and listening, any order
        assert any(f"Listening on 127.0.0.1:{port}" in line for line in lines), lines
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login") as resp:
            assert b'id="name"' in resp.read()
        proc.stdin.write("cd /osh/web\nls\nset safe_mode False\nshutdown -y\n")
        proc.stdin.flush()
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stdout.close()
