"""Figure 5's client: holds thousands of requests open from its own process.

    python benchmarks/_holders.py PORT COUNT

Commands on stdin, one a line: ``open`` opens ``COUNT`` keep-alive connections to the server,
each sending ``GET /?number=77`` (a request the server holds), and prints ``OPEN <count>
<seconds>``; ``release`` asks the server to release every hold (``GET /ctl?cmd=release``,
on a connection of its own), waits until every held request has its answer, closes them
and prints ``ANSWERED <seconds from the release request to the last answer> <missing>
<server's answer>``.  Anything else, or end of input, closes everything.

Plain sockets and ``epoll``, no asyncio: waiting for 10,000 answers costs the client a few
microseconds each, so the time measured is the server's.  Run by ``holds.py``, in a process
of its own so it shares no GIL with the driver that runs ``wrk``.
"""

from __future__ import annotations

import resource
import select
import socket
import sys
import time

REQUEST = b"GET /?number=77 HTTP/1.1\r\nHost: bench\r\n\r\n"


def open_held(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(REQUEST)
        socks.append(s)
    return socks


def release(port: int, socks: list[socket.socket], timeout: float = 120) -> tuple[float, int, str]:
    ep = select.epoll(len(socks) + 1)
    byfd = {}
    for s in socks:
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN)
        byfd[s.fileno()] = s
    t0 = time.perf_counter()
    told = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    told.sendall(b"GET /ctl?cmd=release HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
    left, end, last = len(socks), t0 + timeout, t0
    while left and time.perf_counter() < end:
        for fd, _ in ep.poll(1):
            if byfd[fd].recv(65536):
                last = time.perf_counter()
                ep.unregister(fd)
                left -= 1
    ep.close()
    answer = b""
    while chunk := told.recv(65536):
        answer += chunk
    told.close()
    for s in socks:
        s.close()
    return last - t0, left, answer.decode(errors="replace").split("\r\n\r\n", 1)[-1].strip()


def main() -> None:
    port, count = int(sys.argv[1]), int(sys.argv[2])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks: list[socket.socket] = []
    for line in sys.stdin:
        line = line.strip()
        if line == "open":
            t0 = time.perf_counter()
            socks = open_held(port, count)
            print(f"OPEN {len(socks)} {time.perf_counter() - t0:.3f}", flush=True)
        elif line == "release":
            elapsed, missing, told = release(port, socks)
            socks = []
            print(f"ANSWERED {elapsed:.6f} {missing} {told}", flush=True)
        else:
            break
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
