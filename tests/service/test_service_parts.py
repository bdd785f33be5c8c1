"""The service's parts on their own: frames, the bounded output queue, socket paths, peers."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from otrace.service import paths
from otrace.service.outqueue import OutputQueue
from otrace.service.peer import Peer, check_peer, peer_of
from otrace.service.protocol import MAX_FRAME, FrameReader, ProtocolError, encode, split_text


def test_frames_round_trip_across_chunks():
    data = encode({"t": "exec", "id": 1, "line": "pr 'a\\nb' é"}) + encode({"t": "detach"})
    reader = FrameReader()
    got = []
    for i in range(0, len(data), 3):
        got += reader.feed(data[i : i + 3])
    assert [m["t"] for m in got] == ["exec", "detach"]
    assert got[0]["line"] == "pr 'a\\nb' é"


@pytest.mark.parametrize("bad", [b"not json\n", b"[1, 2]\n", b'{"no": "type"}\n', b"\xff\xfe\n"])
def test_garbage_is_a_protocol_error(bad):
    with pytest.raises(ProtocolError):
        FrameReader().feed(bad)


def test_an_oversized_frame_is_refused_before_it_is_buffered():
    reader = FrameReader()
    with pytest.raises(ProtocolError, match="longer than"):
        for _ in range(MAX_FRAME // 65536 + 2):
            reader.feed(b"x" * 65536)
    assert split_text("abc", 2) == ["ab", "c"] and split_text("") == [""]


def test_output_queue_drops_oldest_announcements_and_counts_but_keeps_replies():
    q = OutputQueue(limit=3)
    for i in range(10):
        q.put_announcement(f"a{i}")
    q.put_reply({"t": "done", "id": 1})
    frames = q.take(0)
    assert frames[0] == {"t": "dropped", "n": 7}
    assert [f.get("text") for f in frames[1:4]] == ["a7", "a8", "a9"]
    assert frames[4] == {"t": "done", "id": 1}
    assert q.dropped_total == 7 and q.take(0) == []


def test_output_queue_keeps_the_order_frames_were_put_in():
    # a trace fires while a command runs: its announcement must not follow the result
    # (CI once printed "The reciprocal of 1.0 is 1.0" above the respond trace)
    q = OutputQueue()
    q.put_reply({"t": "out", "id": 1, "text": "before"})
    q.put_announcement("Receive:tg-self.value==1")
    q.put_announcement("Receive.respond:tr-taggedself")
    q.put_reply({"t": "done", "id": 1})
    q.put_announcement("later")
    assert [f.get("text", f["t"]) for f in q.take(0)] == [
        "before",
        "Receive:tg-self.value==1",
        "Receive.respond:tr-taggedself",
        "done",
        "later",
    ]


def test_output_queue_never_blocks_a_producer():
    q = OutputQueue(limit=100)
    start = time.perf_counter()
    for i in range(100_000):  # nobody takes: a stopped client
        q.put_announcement(str(i))
    assert time.perf_counter() - start < 5
    assert len(q) == 100 and q.pending_drops() == 99_900
    q.put_reply({"t": "bye"})
    q.close()
    assert q.take(0) == [{"t": "bye"}]  # the last reply still goes out
    assert q.take(0) is None


def test_peer_check():
    me = os.getuid()
    assert check_peer(Peer(1, me, 0), own_uid=me) is None
    assert check_peer(Peer(1, 0, 0), own_uid=1000) is None  # root may
    assert "uid 65534 may not attach" in check_peer(Peer(1, 65534, 0), own_uid=1000)
    a, b = socket.socketpair()
    with a, b:
        assert peer_of(a) == Peer(os.getpid(), os.getuid(), os.getgid())


def test_default_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert paths.default_socket_path("shop", 42) == str(tmp_path / "otrace" / "shop-42.sock")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert paths.socket_dir() == f"/tmp/otrace-{os.getuid()}"
    assert paths.parse_name("/x/my-app-7.sock") == ("my-app", 7)


def test_private_dir_refuses_one_others_can_write(tmp_path):
    d = tmp_path / "sockets"
    paths.ensure_private_dir(str(d))
    assert oct(d.stat().st_mode & 0o777) == "0o700"
    os.chmod(d, 0o777)
    with pytest.raises(paths.SocketPathError, match="writable by others"):
        paths.ensure_private_dir(str(d))


def test_stale_sockets_are_cleaned_and_live_ones_never_taken(tmp_path):
    dead = tmp_path / "app-999999.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(dead))
    s.close()  # a socket file nobody listens on, of a pid that does not exist
    live = tmp_path / f"app-{os.getpid()}.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(live))
    listener.listen(1)
    try:
        assert paths.clean_stale(str(tmp_path)) == [str(dead)]
        assert live.exists()
        with pytest.raises(paths.SocketPathError, match="in use by a live process"):
            paths.prepare_socket_path(str(live))
        (tmp_path / "file.sock").write_text("")
        with pytest.raises(paths.SocketPathError, match="not a socket"):
            paths.prepare_socket_path(str(tmp_path / "file.sock"))
    finally:
        listener.close()


@pytest.mark.timeout(30)
def test_in_process_service_two_clients_and_announcements(tmp_path):
    """A Service in this process: a socket client and the local one share announcements."""
    from otrace import log
    from otrace.console.remote import RemoteSession
    from otrace.service import Service
    from otrace.shell.session import Session

    g = {"__name__": "svc_test", "value": 7}
    service = Service(lambda: Session(g), program="svc_test")
    local_session = Session(g)
    try:
        path = service.listen(str(tmp_path / "svc.sock"))
        local = RemoteSession(service.connect_local(local_session))
        local.hello()
        remote = RemoteSession(socket.socket(socket.AF_UNIX))
        remote.sock.connect(path)
        assert remote.hello()["program"] == "svc_test"
        heard: list[str] = []
        got = threading.Event()
        remote.on_announce = lambda text: (heard.append(text), got.set())
        assert remote.execute("value * 6").out == "42\n"
        assert remote.execute("cd /osh").err == ""
        assert remote.prompt() == "osh> " and local.prompt() == "globals> "  # own cwd each
        log.announce("something happened")
        assert got.wait(5) and heard == ["something happened"]
        got.clear()
        import logging

        logging.getLogger("otrace.test").warning("disk %s", "full")
        assert got.wait(5) and heard[-1] == "otrace warning: disk full"
        assert [c.text for c in remote.complete("pr val")] == ["value"]
        assert service.info()["consoles"] == 2
        assert "ok  value * 6" in "\n".join(service.audit.snapshot())
        remote.detach()
        local.detach()
    finally:
        service.stop()
    assert not os.path.exists(path)


@pytest.mark.timeout(30)
def test_otrace_listen_environment_and_version_mismatch(tmp_path, monkeypatch):
    import otrace
    from otrace.console.remote import AttachError, RemoteSession
    from otrace.runtime import Runtime

    path = tmp_path / "env.sock"
    monkeypatch.setenv("OTRACE_LISTEN", str(path))
    shell = otrace.OShell({"__name__": "envapp"}, no_input=True, banner="", runtime=Runtime())
    try:
        assert shell.start_service() == str(path) and path.exists()
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(path))
        s.sendall(encode({"t": "hello", "v": 99, "mode": "attach"}))
        s.settimeout(5)
        data = s.recv(65536)
        s.close()
        assert b"protocol version 99 not supported" in data
        remote = RemoteSession(socket.socket(socket.AF_UNIX))
        remote.sock.connect(str(path))
        assert remote.hello("info")["program"]
        remote.close()
    finally:
        shell.shutdown()
    assert not path.exists()
    monkeypatch.setenv("OTRACE_LISTEN", "0")
    assert otrace.OShell({}, no_input=True, runtime=Runtime()).start_service() is None
    with pytest.raises(AttachError, match="no such socket"):
        from otrace.console.attach import find_socket

        find_socket(str(path))
