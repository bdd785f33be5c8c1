"""The audit log: every command from every console, and every refused peer.

One line per event, appended to a file next to the socket (``<socket>.audit.log``, 0600)
and kept in memory (the newest :data:`KEEP` lines) for ``/osh/audit``::

    2026-12-02T05:01:02Z pid=4242 uid=1000 user=ann session=2 ok  trace Cart.total
    2026-12-02T05:01:09Z pid=4300 uid=65534 user=- session=- refused uid 65534 may not attach

Text from the operator is escaped (``repr`` of anything unprintable) so the log stays one
line per event.

Thread safety: :meth:`AuditLog.record` from any thread (session workers, the listener); a
short lock serialises appends.  Never called on a program thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

from otrace.log import get_logger

KEEP = 1000
log = get_logger("audit")


def _clean(text: str) -> str:
    return text if text.isprintable() else repr(text)[1:-1]


class AuditLog:
    """Audit lines in memory and, with ``path``, in a file."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.lines: list[str] = []  # mounted as /osh/audit (a list the shell can browse)
        self._lock = threading.Lock()
        self._failed = False

    def record(self, peer: object, user: str, session: object, outcome: str, command: str) -> None:
        pid = getattr(peer, "pid", "-")
        uid = getattr(peer, "uid", "-")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = (
            f"{stamp} pid={pid} uid={uid} user={_clean(user or '-')} session={session} "
            f"{outcome:<3} {_clean(command[:2000])}"
        )
        with self._lock:
            self.lines.append(line)
            if len(self.lines) > KEEP:
                del self.lines[0]
            if self.path is None or self._failed:
                return
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                with contextlib.closing(os.fdopen(fd, "a", encoding="utf-8")) as f:
                    f.write(line + "\n")
            except OSError as exc:
                self._failed = True  # say it once, keep the in-memory log
                log.warning("cannot write audit log %s: %s", self.path, exc)

    def snapshot(self) -> list[str]:
        """The newest lines, oldest first (for /osh/audit).  Any thread."""
        with self._lock:
            return list(self.lines)
