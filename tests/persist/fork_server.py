"""A Tornado server that traces a method and forks workers (run by test_fork_workers.py).

python fork_server.py STORE     (a SQLite file or a postgresql:// URL)

Prints "port N", then "child TASK PID" per worker.  A thread makes traced calls in the parent
the whole time the workers are forked, so forks happen while otrace's locks are in use.  Each
worker records one context at start; every GET /?n=N records one more.  SIGTERM: a worker
writes what it has queued and exits.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import threading
import time

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.process
import tornado.web

from otrace.contexts import sqlite
from otrace.runtime import default
from otrace.tracing.api import trace


class Shop:
    def sell(self, n: int) -> int:
        return n * 2


SHOP = Shop()


class Handler(tornado.web.RequestHandler):
    def get(self) -> None:
        n = int(self.get_argument("n"))
        self.write(json.dumps({"pid": os.getpid(), "result": SHOP.sell(n)}))


def busy(stop: threading.Event) -> None:
    i = 0
    end = time.monotonic() + 2.0  # the parent never leaves fork_processes: stop on our own
    while not stop.is_set() and time.monotonic() < end:
        SHOP.sell(-1000 - i)  # traced: store, recorder, writer queue, all under otrace locks
        i += 1
        time.sleep(0.0005)


def main() -> None:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test dumps a stuck worker
    faulthandler.enable(all_threads=True)  # a worker that crashes says where
    rt = default()
    rt.persistence.install(rt.params, rt.store)
    rt.params.set_text("pickle_file", sys.argv[1])
    trace(Shop.sell, condition="all")
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    print(f"port {sockets[0].getsockname()[1]}", flush=True)
    stop = threading.Event()
    threading.Thread(target=busy, args=(stop,), daemon=True).start()
    task = tornado.process.fork_processes(2, max_restarts=0)
    # a worker from here on (the parent stays inside fork_processes until its workers end)
    stop.set()

    def on_term(*_: object) -> None:
        ok = sqlite.flush(20)
        w = sqlite.writer()
        sys.stderr.write(f"worker {os.getpid()} flushed={ok} {w.stats() if w else None}\n")
        sys.stderr.flush()
        os._exit(0 if ok else 3)

    signal.signal(signal.SIGTERM, on_term)
    SHOP.sell(task)  # one context per worker, whatever requests it gets
    # One write per line: both workers print at once into the same pipe, and print() writes
    # the text and its newline separately when Python runs unbuffered (PYTHONUNBUFFERED, as
    # here and on CI), which gave "child 1 Achild 0 B" then an empty line.  A write this
    # short to a pipe is atomic.
    os.write(1, f"child {task} {os.getpid()}\n".encode())
    server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/", Handler)]))
    server.add_sockets(sockets)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
