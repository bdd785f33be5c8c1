"""A client's outgoing frames: replies in order, announcements bounded.

Program threads put announcements here; they never wait: the queue holds at most
``limit`` announcements and drops the oldest when full, counting them, and the client is told
how many it missed.  Replies to the client's own requests (results, completions) are never
dropped.  One writer thread per client takes frames out and sends them, and only it may
block (on a slow or stopped client).

Thread safety: :meth:`put_announcement`, :meth:`put_reply` and :meth:`close` from any thread;
:meth:`take` from the client's writer thread only.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

DEFAULT_LIMIT = 1000


class OutputQueue:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._replies: deque[dict[str, Any]] = deque()
        self._announcements: deque[str] = deque()
        self._dropped = 0  # since last told
        self.dropped_total = 0
        self._ready = threading.Condition(threading.Lock())
        self._closed = False

    def put_announcement(self, text: str) -> None:
        """Queue ``text``; never blocks beyond a short uncontended lock.  Any thread."""
        with self._ready:
            if self._closed:
                return
            if len(self._announcements) >= self.limit:
                self._announcements.popleft()
                self._dropped += 1
                self.dropped_total += 1
            self._announcements.append(text)
            self._ready.notify()

    def put_reply(self, msg: dict[str, Any]) -> None:
        """Queue a reply frame (kept, in order).  Any thread."""
        with self._ready:
            if self._closed:
                return
            self._replies.append(msg)
            self._ready.notify()

    def take(self, timeout: float | None = None) -> list[dict[str, Any]] | None:
        """The frames to send now (replies first); [] on timeout; None once closed and empty."""
        with self._ready:
            if not self._closed and not self._replies and not self._announcements:
                self._ready.wait(timeout)
            if self._closed:
                # a last reply (``bye``) still goes out; announcements do not
                out = list(self._replies)
                self._replies.clear()
                return out or None
            out = list(self._replies)
            self._replies.clear()
            if self._dropped:
                out.append({"t": "dropped", "n": self._dropped})
                self._dropped = 0
            out.extend({"t": "announce", "text": t} for t in self._announcements)
            self._announcements.clear()
            return out

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def __len__(self) -> int:
        with self._ready:
            return len(self._replies) + len(self._announcements)
