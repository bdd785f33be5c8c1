"""The console protocol, version 1: how a console talks to the otrace service of a program.

Transport: a stream socket (a UNIX socket for ``otrace attach``, a socket pair for the local
terminal).  Before a single byte is read the service checks the peer's credentials
(``SO_PEERCRED``); a refused peer gets one ``refused`` frame and the connection is closed.

Framing: one JSON object per line (UTF-8, ``\\n``-terminated, no raw newline inside since
JSON escapes them).  A frame is at most :data:`MAX_FRAME` bytes; a longer one, or one that is
not a JSON object with a string ``t`` (type), ends the connection (and only it).  Unknown
frame types are ignored by both sides, so fields and types may be added within a version;
an incompatible change bumps :data:`VERSION`.  A request that needs an answer and that older
services would ignore is sent only to a service whose ``welcome`` lists it in ``caps``
(capabilities); a client falls back to what version 1 always had (``exec``) otherwise.

Client -> service

=============  ================================================================================
``hello``      first frame: ``v`` (protocol version), ``mode`` (``attach`` | ``info``),
               ``user`` (the operator's login name, for the audit), ``client`` (free text).
``exec``       run one input line: ``id``, ``line``, ``width`` (terminal columns).  While the
               session is locked the line is a password attempt.
``complete``   ``id``, ``text`` (the line before the cursor).
``interrupt``  Ctrl-C while a command runs: interrupt it (abandoned if stuck in program
               code; its ``done`` comes within a second).
``cancel``     Ctrl-C at a prompt: ``id``; drops pending multi-line code or a lock being set
               up; answered with ``done``.
``edited``     answer to ``edit``: ``id``, ``text`` (the saved text) or ``error``.
``list``       the contexts below a path as data (only if ``welcome`` offers ``list``):
               ``id``, ``path`` (``/osh/recent`` or ``/osh/saved``, deeper, globs),
               ``limit`` (0: ``ls_limit``), ``offset`` (from the newest), ``summaries``
               (bool); see :mod:`otrace.service.listing`.
``detach``     leave; the session ends, the program runs on.
=============  ================================================================================

Service -> client

=============  ================================================================================
``welcome``    answer to ``hello`` (attach): ``v``, ``program``, ``pid``, ``session`` (number),
               ``state`` (see ``done``), ``banner``, ``caps`` (the optional requests this
               service answers: ``["list"]``; absent from services that answer none).
``info``       answer to ``hello`` (info): ``program``, ``pid``, ``consoles``, ``started``
               (epoch seconds), ``socket``; then the service closes the connection.
``refused``    ``msg``: why this peer may not attach (then the connection is closed).
``out``        part of a command's result: ``id``, ``stream`` (``out``/``err``), ``text``,
               ``kind`` (``text``/``python``: may be highlighted).
``done``       the command ``id`` finished: ``action`` (``repeat``/``confirm``/``detach``/
               ``""``), ``arg``, and ``state``: ``prompt``, ``pending`` (multi-line code
               waits), ``secret`` (a password prompt: read the next line without echo),
               ``auto_lock`` (idle seconds before the client sends ``lock``; 0: never).
``completions`` ``id``, ``items``: ``[text, start, display, meta]`` lists.
``entries``    answer to ``list``, in one or more frames: ``id``, ``items`` (``[name, kind,
               created, summary]`` lists, oldest first), ``more`` on all but the last, which
               has ``total``, ``limit``, ``offset``, ``ls_limit``; or ``error`` alone.
``announce``   ``text``: a trace event or a change made by another console.
``dropped``    ``n``: announcements dropped because this client was not reading.
``state``      new ``state`` without a command (e.g. ``BRK:`` appeared in the prompt).
``edit``       ask the client to edit ``text`` with the operator's editor: ``id``, ``label``.
``bye``        ``msg``: the service ends this session (shutdown, service stopped).
=============  ================================================================================

Thread safety: functions here are pure; a :class:`FrameReader` belongs to one reader thread.
"""

from __future__ import annotations

import json
from typing import Any

from otrace.errors import OTraceError

VERSION = 1
MAX_FRAME = 1 << 20  # bytes in one frame, newline included
MAX_TEXT = 256 * 1024  # characters of one ``out`` text; longer output is split over frames


class ProtocolError(OTraceError):
    """The peer does not speak this protocol (garbage, an oversized frame, a bad version)."""


def encode(msg: dict[str, Any]) -> bytes:
    """One frame for ``msg`` (a dict with a ``t`` key)."""
    data = json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
    if len(data) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(data)} bytes exceeds {MAX_FRAME}")
    return data


def decode(line: bytes) -> dict[str, Any]:
    """The message in one frame (without its newline); ProtocolError if it is not one."""
    try:
        msg = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("not a JSON frame") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("t"), str):
        raise ProtocolError("frame without a type")
    return msg


def split_text(text: str, size: int = MAX_TEXT) -> list[str]:
    """``text`` in pieces that fit in frames (at least one piece)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class FrameReader:
    """Cuts a byte stream into messages; at most :data:`MAX_FRAME` bytes are buffered."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add received bytes; the complete messages so far.  ProtocolError on garbage."""
        self._buffer.extend(data)
        messages = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if end + 1 > MAX_FRAME:
                raise ProtocolError(f"frame longer than {MAX_FRAME} bytes")
            if line.strip():
                messages.append(decode(line))
        if len(self._buffer) > MAX_FRAME:
            raise ProtocolError(f"frame longer than {MAX_FRAME} bytes")
        return messages
