"""A Tornado program that sets up otrace listening, then ``fork_processes(N)``.

The shell and its service are made in the parent before the fork, as a program would; each
worker then serves on the shared socket.  ``GET /?n=N`` calls ``Work.step`` N times;
``GET /?number=77`` is held by ``hold -c`` (see the tests).  Prints ``PORT n`` in the parent
before forking and ``WORKER pid SOCKET path`` in each worker once it serves.
``APP_WORKERS`` sets N (default 4).
"""

from __future__ import annotations

import asyncio
import os

import tornado.netutil
import tornado.process
import tornado.web
from tornado.httpserver import HTTPServer

import otrace
import otrace.tornado


class Work:
    @staticmethod
    def step(i: int) -> int:
        return i + 1


class Handler(otrace.tornado.HoldAwareMixin, tornado.web.RequestHandler):
    async def get(self) -> None:
        n = int(self.get_argument("n", "0"))
        number = self.get_argument("number", "")
        for i in range(n):
            Work.step(i)
        self.write(f"ok pid={os.getpid()} n={n} number={number}\n")


shell = otrace.OShell(globals_dict=globals(), allow_unsafe=True, listen=True, no_input=True)
parent_socket = shell.start_service()


worker_pid = 0  # set in each worker (read by the tests through consoles)


async def serve(sockets: list) -> None:
    global worker_pid
    worker_pid = os.getpid()
    otrace.tornado.attach(shell, stop_loop=False)
    server = HTTPServer(tornado.web.Application([(r"/", Handler)]))
    server.add_sockets(sockets)
    # one write per line: the workers share the pipe (short writes to it are atomic)
    os.write(1, f"WORKER {os.getpid()} SOCKET {shell.service.path}\n".encode())
    await asyncio.Event().wait()


if __name__ == "__main__":
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    print(f"PORT {sockets[0].getsockname()[1]}", flush=True)
    print(f"PARENT {os.getpid()} SOCKET {parent_socket}", flush=True)
    # (a worker that dies is replaced: the parent forks a new one)
    tornado.process.fork_processes(int(os.environ.get("APP_WORKERS", "4")))
    asyncio.run(serve(sockets))
