"""The fleet console's session: what ``otrace attach --all PROGRAM`` drives.

:class:`FleetSession` looks to a console like one remote session (see
:class:`~otrace.console.remote.RemoteSession`); behind it is one attached session per
worker (:mod:`otrace.fleet.members`).  Routing of a line typed at the fleet level:

* ``cd /osh/workers/<pid>[/path]`` browses that worker alone (``/osh/workers/<pid>/x`` is
  its ``/osh/x``); every line then goes to it, as if attached to it alone, until ``cd
  /osh/workers``.  A path ``/osh/workers/<pid>/...`` in any line at the fleet level sends
  that line to that worker.
* ``ls /osh/workers``: the workers.  ``ls [-l] /osh/recent[/path]`` (or ``/osh/saved``):
  the contexts of every worker (four levels deep: kind/function/condition/time), each named
  ``...@<pid>`` (:mod:`otrace.fleet.contexts`); ``cd /osh/recent/...@<pid>`` enters one in
  its worker.
* ``resume ID``: to the worker whose hold it is (``ID@pid`` names it; without a pid every
  worker is asked and only the one that had it answers).
* anything else runs in every worker at once (``trace``, ``set``, ``hold -c``, ``del`` ...
  change each worker's own state): their answers are shown once per distinct output, headed
  by the workers that gave it.  A worker that died answers ``Disconnected``; the others'
  answers stand.

Announcements of a worker are shown prefixed with its pid.  A watcher thread notices workers
that start (a new socket of the program) or end, and announces them.

Thread safety: the console thread calls the request methods; :meth:`interrupt` and
:meth:`close` any thread.  The watcher and the members' reader threads only call
``on_announce``/``on_state``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from otrace.console.backend import Backend, Editor, Poll
from otrace.console.remote import AttachError
from otrace.fleet import contexts as _contexts
from otrace.fleet import members as _members
from otrace.fleet.output import failed, merge
from otrace.shell.completion import Completion
from otrace.shell.output import Result

WATCH_INTERVAL = 0.5  # seconds between looks for workers that start or end
WORKERS = "/osh/workers"


class FleetSession(Backend):
    """Every attachable process of ``program`` (sockets in ``directory``) behind one console."""

    def __init__(
        self, program: str, directory: str | None = None, hosts: tuple[str, ...] = ()
    ) -> None:
        self.program = program
        self.directory = directory
        self.hosts = hosts  # ssh://[user@]host[:port] (no local processes when given)
        self._looks = 0
        self.on_announce: Callable[[str], Any] = lambda text: None
        self.on_state: Callable[[], Any] = lambda: None
        self.members: dict[int, _members.Member] = {}
        self.focus: int | None = None
        self.ended = threading.Event()
        self.bye = ""
        self.lost = False
        self._lock = threading.Lock()
        self._failed: dict[int, str] = {}  # pid -> why it could not be attached (said once)
        self._watcher: threading.Thread | None = None

    # -- members ------------------------------------------------------------------------
    def start(self) -> list[str]:
        """Attach to every worker there is now; messages for the operator.  AttachError if
        there is none."""
        notes: list[str] = []
        sockets = self._discover(notes)
        if not sockets:
            if notes:
                raise AttachError("; ".join(notes))
            raise AttachError(
                f"no otrace service for a program named {self.program!r} (see otrace ps)"
            )
        notes += [self._join(pid, path) for pid, path in sorted(sockets.items())]
        if not self.members:
            raise AttachError("; ".join(n for n in notes if n))
        self._watcher = threading.Thread(target=self._watch, name="otrace-fleet", daemon=True)
        self._watcher.start()
        return [n for n in notes if n]

    def _discover(self, notes: list[str]) -> dict[int, str]:
        """pid -> socket path (or ssh address) of every process of the program."""
        if not self.hosts:
            return _members.find_sockets(self.program, self.directory)
        found: dict[int, str] = {}
        for url in self.hosts:
            try:
                remote = _members.find_remote(url, self.program)
            except AttachError as exc:
                notes.append(str(exc))  # an unreachable host: one line, the rest works
                continue
            for pid, address in remote.items():
                if pid in found:
                    notes.append(f"pid {pid} of {address} collides with {found[pid]}; left out")
                else:
                    found[pid] = address
        return found

    def _join(self, pid: int, path: str) -> str:
        opener = None
        if path.startswith("ssh://"):
            from otrace.fleet.ssh import ssh_socket

            opener = lambda: ssh_socket(path)[0]  # noqa: E731
        member = _members.attach_member(
            pid, path, self._member_announce, self._member_state, opener
        )
        if isinstance(member, str):
            self._failed[pid] = member
            return f"worker {pid}: {member}"
        with self._lock:
            self.members[pid] = member
        return ""

    def _member_announce(self, pid: int, text: str) -> None:
        self.on_announce(f"[{pid}] {text}")

    def _member_state(self) -> None:
        self.on_state()

    def _watch(self) -> None:
        while not self.ended.wait(WATCH_INTERVAL):
            try:
                self._look()
            except Exception as exc:  # the watcher never dies of one bad look
                self.on_announce(f"*** otrace fleet: looking for workers failed: {exc}")

    def _look(self) -> None:
        for pid, member in list(self.members.items()):
            if not member.alive:
                self._failed[pid] = "left"  # not joined again (e.g. a zombie's old socket)
                with self._lock:
                    self.members.pop(pid, None)
                    if self.focus == pid:
                        self.focus = None
                why = member.remote.bye or "its connection ended"
                self.on_announce(f"*** worker {pid} left the fleet ({why})")
                self.on_state()
        self._looks += 1
        if self.hosts and self._looks % 20:
            return  # other hosts are asked every 10 s (each look is an ssh login)
        sockets = self._discover([])
        for pid, path in sorted(sockets.items()):
            if pid in self.members or pid in self._failed:
                continue
            note = self._join(pid, path)
            self.on_announce(note and f"*** {note}" or f"*** worker {pid} joined the fleet")
            self.on_state()

    def live(self) -> list[_members.Member]:
        with self._lock:
            return [self.members[p] for p in sorted(self.members)]

    # -- what a console asks --------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:  # type: ignore[override]
        """The state of the worker browsed (its cwd, aliases, lock), with its pid in the
        prompt; at the fleet level, the fleet's own (the workers' prompt if they agree)."""
        focused = self._focused()
        if focused is not None:
            state = focused.remote.state
            return {**state, "prompt": f"[{focused.pid}] {state.get('prompt', '> ')}"}
        live = self.live()
        prompts = {m.remote.prompt() for m in live}
        common = prompts.pop() if len(prompts) == 1 else "(mixed)> "
        return {"prompt": f"fleet[{len(live)}] {common}", "repeat_interval": 0.2}

    def _focused(self) -> _members.Member | None:
        pid = self.focus
        return None if pid is None else self.members.get(pid)

    def execute(
        self, line: str, width: int = 0, poll: Poll | None = None, on_edit: Editor | None = None
    ) -> Result:
        """Run ``line`` where it belongs (see the module docstring)."""
        words = line.split()
        first = words[0] if words else ""
        if first in ("quit", "exit", "detach"):
            result = Result()
            result.action = "detach"
            return result
        if first == "cd" and len(words) == 2 and _under(words[1], WORKERS):
            return self._cd_worker(words[1], width)
        if first == "ls" and len(words) == 2 and words[1].rstrip("/") == WORKERS:
            return self._list_workers()
        if self.focus is not None:
            member = self._focused()
            if member is None:
                return _error(f"worker {self.focus} has left the fleet; cd {WORKERS}")
            return member.execute(line, width, poll, on_edit)
        if not words:
            return Result()
        routed = self._routed(words)
        if routed is not None:
            pid, rewritten = routed
            member = self.members.get(pid)
            if member is None:
                return _error(f"no worker {pid} in this fleet (ls {WORKERS})")
            return member.execute(rewritten, width, on_edit=on_edit)
        if _contexts.wants(words):
            return _contexts.list_contexts(self.live(), words, poll, self.interrupt)
        if first == "cd" and len(words) == 2 and _in_contexts(words[1]) and "@" in words[1]:
            path, _, pid_text = words[1].rpartition("@")
            if pid_text.isdigit() and int(pid_text) in self.members:
                self.focus = int(pid_text)
                return self.members[self.focus].execute(f"cd {path}", width, on_edit=on_edit)
        if first == "resume":
            return self._resume(words, width)
        return self.broadcast(line, width, poll, on_edit)

    def broadcast(
        self, line: str, width: int = 0, poll: Poll | None = None, on_edit: Editor | None = None
    ) -> Result:
        """``line`` in every worker at once; their answers merged."""
        return merge(self._everywhere(line, width, poll, _edit_once(on_edit)))

    def _everywhere(
        self,
        line: str,
        width: int = 0,
        poll: Poll | None = None,
        on_edit: Editor | None = None,
        members: list[_members.Member] | None = None,
    ) -> dict[int, Result]:
        live = self.live() if members is None else members
        return _members.each(
            live,
            lambda m: m.execute(line, width, on_edit=on_edit),
            lambda exc: _error(f"failed: {exc}"),
            poll,
            self.interrupt,
        )

    def _cd_worker(self, path: str, width: int) -> Result:
        rest = path[len(WORKERS) :].strip("/")
        if not rest:
            self.focus = None
            return Result()
        pid_text, _, inner = rest.partition("/")
        if not pid_text.isdigit() or int(pid_text) not in self.members:
            return _error(f"no worker {pid_text} in this fleet (ls {WORKERS})")
        self.focus = int(pid_text)
        return self.members[self.focus].execute(f"cd /osh/{inner}".rstrip("/"), width)

    def _list_workers(self) -> Result:
        result = Result()
        for member in self.live():
            welcome = member.welcome
            result.write(f"{member.pid}  {welcome.get('program', self.program)}  {member.path}")
        return result

    def _routed(self, words: list[str]) -> tuple[int, str] | None:
        """(pid, line) when a word names ``/osh/workers/<pid>/...``."""
        for n, word in enumerate(words):
            if _under(word, WORKERS):
                pid_text, _, inner = word[len(WORKERS) :].strip("/").partition("/")
                if pid_text.isdigit():
                    rewritten = [*words[:n], f"/osh/{inner}".rstrip("/"), *words[n + 1 :]]
                    return int(pid_text), " ".join(rewritten)
        return None

    def _resume(self, words: list[str], width: int) -> Result:
        ids = [w for w in words[1:] if not w.startswith("-")]
        named = [w for w in ids if "@" in w and w.rpartition("@")[2].isdigit()]
        if named:
            pid = int(named[0].rpartition("@")[2])
            member = self.members.get(pid)
            if member is None:
                return _error(f"no worker {pid} in this fleet (ls {WORKERS})")
            line = " ".join(w.rpartition("@")[0] if w in named else w for w in words)
            return member.execute(line, width)
        answers = self._everywhere(" ".join(words), width)
        good = {pid: a for pid, a in answers.items() if not failed(a)}
        return merge(good or answers)

    def cancel(self) -> Result:
        focused = self._focused()
        if focused is not None:
            return focused.remote.cancel()
        return Result()

    def complete(self, text: str) -> list[Completion]:
        focused = self._focused()
        live = self.live()
        member = focused if focused is not None else (live[0] if live else None)
        if member is None or not member.lock.acquire(timeout=0.5):
            return []
        try:
            return member.remote.complete(text)
        finally:
            member.lock.release()

    def interrupt(self) -> None:
        for member in self.live():
            member.remote.interrupt()

    def detach(self) -> None:
        self.close()

    def close(self) -> None:
        self.ended.set()
        for member in self.live():
            member.close()


def _in_contexts(path: str) -> bool:
    return any(_under(path, root) for root in _contexts.ROOTS)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def _error(text: str) -> Result:
    result = Result()
    result.error(text)
    return result


def _edit_once(on_edit: Editor | None) -> Editor | None:
    """``edit`` broadcast: the operator edits a text once; workers asking to edit the same
    text get the same answer (one editor at a time)."""
    if on_edit is None:
        return None
    lock = threading.Lock()
    answers: dict[tuple[str, str], str] = {}

    def edit(text: str, label: str, editor: str) -> str:
        with lock:
            if (text, label) not in answers:
                answers[(text, label)] = on_edit(text, label, editor)
            return answers[(text, label)]

    return edit
