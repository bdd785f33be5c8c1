"""A client's outgoing frames: replies in order, announcements bounded.

Program threads put announcements here; they never wait and take no Python-level lock: the
queue holds at most ``limit`` announcements and drops the oldest when full
(``deque(maxlen=...)``, atomic under the GIL), counting them, and the client is told how many
it missed.  (Two program threads racing may lose one count of a drop; never an announcement
that was kept.)  A sleeping writer is woken with a token on a ``SimpleQueue``, whose put is
re-entrant: a program's finalizer (or signal handler) that announces while this thread is
inside a put -- a collection may run one at any call -- cannot deadlock it, as it could
under a lock (``Condition.notify``).  Replies to the client's own requests (results, completions) are never
dropped.  Frames go out in the order they were put: an announcement made while a command ran
(a trace that fired during ``submit(1)``) reaches the console before that command's result,
as it would in a terminal.  One writer thread per client takes frames out and sends them,
and only it may block (on a slow or stopped client).

Thread safety: :meth:`put_announcement`, :meth:`put_reply` and :meth:`close` from any thread;
:meth:`take` from the client's writer thread only.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from collections import deque
from typing import Any

DEFAULT_LIMIT = 1000


class OutputQueue:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        # each entry carries a number from one counter, so take() can restore the put order;
        # next() on itertools.count is atomic under the GIL, as is a deque's append
        self._order = itertools.count()
        self._replies: deque[tuple[int, dict[str, Any]]] = deque()
        self._announcements: deque[tuple[int, str]] = deque(maxlen=limit)  # drops the oldest
        self._puts = 0  # announcements ever put
        self._accounted = 0  # of those: taken or counted as dropped
        self._dropped = 0  # since last told
        self.dropped_total = 0
        # replies, _closed and take()'s accounting; never taken by put_announcement
        self._mutex = threading.Lock()
        self._nudge: queue.SimpleQueue[None] = queue.SimpleQueue()  # wakes take()
        self._waiting = False  # the writer sleeps in take(): only then is a token needed
        self._closed = False

    def put_announcement(self, text: str) -> None:
        """Queue ``text``; never blocks beyond a short uncontended lock.  Any thread."""
        # the hot path of a traced thread: an append, a count, a flag
        if self._closed:
            return
        self._announcements.append((next(self._order), text))
        self._puts += 1
        if self._waiting:  # set before the writer looks at the queues and sleeps
            self._nudge.put(None)

    def put_reply(self, msg: dict[str, Any]) -> None:
        """Queue a reply frame (kept, in order).  Any thread."""
        with self._mutex:
            if self._closed:
                return
            self._replies.append((next(self._order), msg))
        self._nudge.put(None)

    def take(self, timeout: float | None = None) -> list[dict[str, Any]] | None:
        """The frames to send now, in put order (a drop notice first); [] on timeout; None once
        closed and empty."""
        nudge = self._nudge
        self._waiting = True  # before looking: a put after the look then leaves a token
        try:
            if not self._closed and not self._replies and not self._announcements:
                with contextlib.suppress(queue.Empty):
                    nudge.get(timeout=timeout)
        finally:
            self._waiting = False
        while nudge.qsize():  # tokens of puts taken now (a spare one: one empty take)
            nudge.get_nowait()
        with self._mutex:
            if self._closed:
                # a last reply (``bye``) still goes out; announcements do not
                last = [msg for _, msg in self._replies]
                self._replies.clear()
                return last or None
            replies = list(self._replies)
            self._replies.clear()
            texts: list[tuple[int, str]] = []
            with contextlib.suppress(IndexError):
                while True:
                    texts.append(self._announcements.popleft())
            dropped = max(0, self._puts - self._accounted - len(texts))
            self._accounted += len(texts) + dropped
            self._dropped += dropped
            self.dropped_total += dropped
            out: list[dict[str, Any]] = []
            if self._dropped:
                out.append({"t": "dropped", "n": self._dropped})
                self._dropped = 0
            frames = replies + [(n, {"t": "announce", "text": t}) for n, t in texts]
            # two program threads may append out of number order; sorting restores it
            frames.sort(key=_first)
            out.extend(frame for _, frame in frames)
            return out

    def close(self) -> None:
        with self._mutex:
            self._closed = True
        self._nudge.put(None)

    def pending_drops(self) -> int:
        """Announcements dropped and not yet reported (approximate).  Any thread."""
        return max(0, self._puts - self._accounted - len(self._announcements)) + self._dropped

    def __len__(self) -> int:
        with self._mutex:
            return len(self._replies) + len(self._announcements)


def _first(entry: tuple[int, Any]) -> int:
    return entry[0]
