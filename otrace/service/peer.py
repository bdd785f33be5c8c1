"""Who is on the other end of a UNIX socket, and whether they may attach.

The check runs on the credentials the kernel recorded at ``connect`` (``SO_PEERCRED``),
before a single byte of the protocol is read: the program's own uid, or root, may attach;
anyone else is refused.

Thread safety: plain functions; any thread.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class Peer:
    """The process on the other end: pid, uid, gid (``-1`` where the kernel does not say)."""

    pid: int
    uid: int
    gid: int

    def describe(self) -> str:
        return f"pid {self.pid} uid {self.uid}"


def peer_of(sock: socket.socket) -> Peer:
    """The credentials of ``sock``'s peer (this process's own for a socket pair)."""
    if sock.family == socket.AF_UNIX and hasattr(socket, "SO_PEERCRED"):
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
        return Peer(pid, uid, gid)
    return Peer(-1, -1, -1)


def check_peer(peer: Peer, own_uid: int | None = None) -> str | None:
    """Why ``peer`` may not attach (None: it may): only our own uid and root may."""
    own = os.getuid() if own_uid is None else own_uid
    if peer.uid in (own, 0):
        return None
    return f"uid {peer.uid} may not attach to this process (owner uid {own}; root may)"
