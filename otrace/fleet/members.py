"""The workers of a fleet: finding their sockets, and one attached console per worker.

Thread safety: :func:`find_sockets` anywhere; a :class:`Member` is driven by one thread at a
time for requests (the fleet runs one thread per member per command); ``close`` any thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from otrace.console.attach import connect
from otrace.console.backend import Editor, Poll
from otrace.console.remote import AttachError, RemoteSession
from otrace.service import paths
from otrace.service.listing import Listing
from otrace.shell.output import Result


def find_sockets(program: str, directory: str | None = None) -> dict[int, str]:
    """pid -> socket path of the live processes named ``program`` (as ``otrace ps`` shows)."""
    found: dict[int, str] = {}
    for path in paths.list_sockets(directory):
        parsed = paths.parse_name(path)
        if parsed is None or parsed[0] != program or not paths.pid_alive(parsed[1]):
            continue
        found[parsed[1]] = path
    return found


class Member:
    """One worker of the fleet: a console session attached to its service."""

    def __init__(
        self,
        pid: int,
        path: str,
        on_announce: Callable[[int, str], Any],
        on_state: Callable[[], Any],
        open_socket: Callable[[], Any] | None = None,
    ) -> None:
        self.pid = pid
        self.path = path
        sock = open_socket() if open_socket is not None else connect(path)
        self.remote = RemoteSession(sock, client="otrace attach --all")
        self.remote.on_announce = lambda text: on_announce(pid, text)
        self.remote.on_state = on_state
        self.welcome: dict[str, Any] = {}
        self.lock = threading.Lock()  # one request at a time on this member
        self.ls_limit = 0  # its ls_limit, as its last listing said (0: not known yet)

    def hello(self) -> None:
        """Attach (AttachError if refused)."""
        self.welcome = self.remote.hello("attach")

    @property
    def alive(self) -> bool:
        return not self.remote.ended.is_set()

    def execute(
        self, line: str, width: int = 0, poll: Poll | None = None, on_edit: Editor | None = None
    ) -> Result:
        """Run ``line`` in this worker; its Result (errors say what happened)."""
        with self.lock:
            return self.remote.execute(line, width, poll, on_edit)

    def offers(self, capability: str) -> bool:
        return self.remote.offers(capability)

    def list_contexts(self, path: str, limit: int = 0, summaries: bool = False) -> Listing:
        """The ``list`` message (see :mod:`otrace.service.listing`), one request at a time."""
        with self.lock:
            return self.remote.list_contexts(path, limit, summaries=summaries)

    def close(self) -> None:
        self.remote.detach()


T = TypeVar("T")


def each(
    members: list[Member],
    ask: Callable[[Member], T],
    failed: Callable[[Exception], T],
    poll: Poll | None = None,
    interrupt: Callable[[], Any] | None = None,
) -> dict[int, T]:
    """pid -> ``ask(member)`` for every member, asked at once (a thread each); what one
    raises is ``failed(exc)``, its own part of the answer.  ``poll()`` (Ctrl-C pressed?) is
    checked while waiting; once true, ``interrupt()`` is called."""
    answers: dict[int, T] = {}

    def run(member: Member) -> None:
        try:
            answers[member.pid] = ask(member)
        except Exception as exc:
            answers[member.pid] = failed(exc)

    threads = [threading.Thread(target=run, args=(m,), daemon=True) for m in members]
    for t in threads:
        t.start()
    interrupted = False
    for t in threads:
        while t.is_alive():
            t.join(0.1)
            if not interrupted and poll is not None and poll():
                interrupted = True
                if interrupt is not None:
                    interrupt()
    return answers


def attach_member(
    pid: int,
    path: str,
    on_announce: Callable[[int, str], Any],
    on_state: Callable[[], Any],
    open_socket: Callable[[], Any] | None = None,
) -> Member | str:
    """A member attached to ``path`` (or over ``open_socket()``), or why it could not be."""
    try:
        member = Member(pid, path, on_announce, on_state, open_socket)
    except AttachError as exc:
        return str(exc)
    try:
        member.hello()
    except AttachError as exc:
        member.remote.close()
        return str(exc)
    return member


def socket_owner_ok(path: str) -> bool:
    try:
        return os.stat(path).st_uid == os.getuid()
    except OSError:
        return False


def find_remote(url: str, program: str) -> dict[int, str]:
    """pid -> ``ssh://.../pid`` of the processes named ``program`` on the host of ``url``
    (``otrace ps`` run there through ssh).  AttachError if the host cannot be asked."""
    import subprocess

    from otrace.fleet.ssh import ssh_command

    command = ssh_command(f"{url.rstrip('/')}/{program}")
    command[-1] = command[-1].replace(" bridge ", " ps ", 1).rsplit(" ", 1)[0]
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AttachError(f"{url}: cannot list its processes ({exc})") from None
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["ssh failed"])[-1]
        raise AttachError(f"{url}: {why}")
    found: dict[int, str] = {}
    for line in done.stdout.splitlines():
        cells = line.split()
        if len(cells) >= 2 and cells[0].isdigit() and cells[1] == program:
            found[int(cells[0])] = f"{url.rstrip('/')}/{cells[0]}"
    return found
