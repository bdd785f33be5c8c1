"""``exec_lock`` never makes a program thread wait for long (issue 14, the first law).

With ``exec_lock`` on, typed code used to hold the tracing lock itself: a command stuck in
the program's code (``!time.sleep(30)``), even after the service abandoned it, kept every
traced thread that needed the lock (a count running out, a patch installed on the loop)
waiting until it ended.  Now traced calls on other threads wait at most ``exec_hold.WAIT``
once per hold, then run untraced (counted, announced), and an abandoned command stops
holding at once.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from otrace.tracing import exec_hold
from otrace.tracing.exec_hold import ExecHold
from tests.tmux import wait_until


class Worker:
    """A program thread calling ``func(1)`` in a loop; it records its longest gap."""

    def __init__(self, func):
        self.func = func
        self.stop = threading.Event()
        self.calls = 0
        self.worst = 0.0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.run, name="program", daemon=True)

    def run(self):
        last = time.monotonic()
        try:
            while not self.stop.is_set():
                self.func(1)
                self.calls += 1
                now = time.monotonic()
                self.worst = max(self.worst, now - last)
                last = now
                time.sleep(0.002)
        except BaseException as exc:  # noqa: B036 - reported by the test
            self.error = exc

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)


def work(x):
    return x + 1


@pytest.mark.timeout(60)
def test_an_abandoned_command_holding_exec_lock_does_not_stall_traced_threads(runtime, tmp_path):
    from otrace.console.remote import RemoteSession
    from otrace.service import Service
    from otrace.shell.session import Session

    started = threading.Event()
    g = {"__name__": "exec_lock_app", "work": work, "started": started}
    service = Service(lambda: Session(g, allow_unsafe=True), program="exec_lock_app")
    heard: list[str] = []
    remote = RemoteSession(socket.socket(socket.AF_UNIX))
    try:
        remote.sock.connect(service.listen(str(tmp_path / "svc.sock")))
        remote.hello()
        remote.on_announce = heard.append
        for line in ("set safe_mode False", "set exec_lock True", "trace -n 5 -c x==1 work"):
            assert remote.execute(line).err == "", line
        traced = g["work"]
        hold = runtime.tracer.exec_hold
        with Worker(traced) as program:
            # Ctrl-C once the typed code runs (under exec_lock); time.sleep is C code, so
            # the interrupt cannot land and the service abandons the command after 0.5 s
            r = remote.execute("!import time; started.set(); time.sleep(30)", poll=started.is_set)
            assert "abandoned" in r.err
            assert not hold.active  # abandoning released the hold
            calls = program.calls
            # the count (5) runs out on the program thread: it records again
            wait_until(
                lambda: runtime.tracer.get_spec("work") is None,
                10,
                lambda: "tracing did not resume",
            )
            wait_until(lambda: program.calls > calls + 20, 10, lambda: "the program thread stopped")
        assert program.error is None
        assert program.calls > calls + 20, "the program thread stopped"
        # one bounded wait (exec_hold.WAIT) at most, plus scheduling on a busy machine
        assert program.worst < 0.5, f"the program thread stalled {program.worst:.2f} s"
        assert hold.skipped > 0  # calls made during the hold ran untraced ...
        assert runtime.store.newest is not None, "no contexts after the hold"
        wait_until(
            lambda: any("traced calls on other threads ran untraced" in t for t in heard),
            5,
            lambda: f"no announcement of untraced calls: {heard}",
        )
        assert remote.execute("pr 40 + 2").out == "42\n"  # the session goes on
        remote.detach()
    finally:
        remote.close()
        service.stop()


def test_a_short_hold_serialises_and_a_long_one_is_waited_for_once():
    said: list[str] = []
    hold = ExecHold(said.append)
    box: dict = {}

    def traced_call(key):
        started = time.monotonic()
        box[key] = (hold.admit(), time.monotonic() - started)

    with hold.hold():
        assert hold.admit()  # the evaluating thread's own calls are traced
        t = threading.Thread(target=traced_call, args=("first",))
        t.start()
        t.join(5)
        assert box["first"][0] is False  # waited exec_hold.WAIT, then ran untraced
        assert box["first"][1] >= exec_hold.WAIT * 0.9
        t = threading.Thread(target=traced_call, args=("second",))
        t.start()
        t.join(5)
        assert box["second"][0] is False and box["second"][1] < exec_hold.WAIT  # overdue
    assert said == [
        "exec_lock: 2 traced calls on other threads ran untraced while typed code held the tracing lock"
    ]
    assert hold.skipped == 2 and hold.admit()

    # a hold that ends within the wait: the traced call waits for it and is recorded
    entered = threading.Event()
    with hold.hold():
        t = threading.Thread(target=lambda: (entered.set(), traced_call("third")))
        t.start()
        assert entered.wait(5)
    t.join(5)
    assert box["third"][0] is True and said[1:] == []


def test_release_thread_ends_only_that_threads_hold():
    hold = ExecHold(lambda text: None)
    ready, done = threading.Event(), threading.Event()

    def evaluate():
        with hold.hold():
            ready.set()
            done.wait(5)

    t = threading.Thread(target=evaluate)
    t.start()
    assert ready.wait(5) and hold.active
    exec_hold.release_thread(threading.get_ident())  # not the holder: nothing changes
    assert hold.active
    exec_hold.release_thread(t.ident)
    assert not hold.active and hold.admit()
    done.set()
    t.join(5)
    assert not hold.active


@pytest.mark.timeout(30)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # 3.12+: fork with threads
def test_a_forked_child_is_not_paused_by_the_parents_hold():
    import os

    hold = ExecHold(lambda text: None)
    ready, done = threading.Event(), threading.Event()

    def evaluate():
        with hold.hold():
            ready.set()
            done.wait(10)

    t = threading.Thread(target=evaluate)
    t.start()
    try:
        assert ready.wait(5) and hold.active
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: the evaluating thread does not exist here
            os.close(read)
            os.write(write, b"admit" if hold.admit() and not hold.active else b"paused")
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as r:
            assert r.read() == b"admit"
        assert os.waitpid(pid, 0)[1] == 0
        assert hold.active  # the parent's hold is untouched
    finally:
        done.set()
        t.join(5)
