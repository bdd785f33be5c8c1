"""``otrace demo``: the Tornado demo with the console, and what to try in it.

Runs ``tornademos/torna_trace.py`` (shipped with otrace) as if started by hand, after
printing a short guide: open the page, submit 77 (held), look at it from the console,
``resume``, ``shutdown``.
"""

from __future__ import annotations

import runpy
import socket
import sys

GUIDE = """\
otrace demo: tornademos/torna_trace.py, a Tornado server with the otrace console beside it.
Try this:
  1. open {url} and submit 3, then 77 -- 77 is held, its page waits
     (or, in another terminal: curl '{url}?number=77')
  2. here, at the prompt:  ls ~~     cd ~~     ls -l     number     resume
  3. help lists the commands; shutdown stops the server (quit only detaches this console).
Tutorials: docs/GettingStarted.rst (hello_trace.py) and docs/UseWithTornado.rst.
"""


def free_port(addr: str) -> int:
    with socket.socket() as sock:
        sock.bind((addr, 0))
        return sock.getsockname()[1]


def port_in_use(addr: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((addr, port))
        except OSError:
            return True
    return False


def run(addr: str = "127.0.0.1", port: int = 8888) -> int:
    """Print the guide and run the demo in this process (returns when it shuts down)."""
    if port == 0 or port_in_use(addr, port):
        if port:
            print(f"(port {port} is busy; using another)", file=sys.stderr)
        port = free_port(addr)
    print(GUIDE.format(url=f"http://{addr}:{port}/"), file=sys.stderr, flush=True)
    saved = sys.argv
    sys.argv = ["torna_trace.py", f"--port={port}", f"--addr={addr}"]
    try:
        runpy.run_module("tornademos.torna_trace", run_name="__main__", alter_sys=True)
    finally:
        sys.argv = saved
    return 0
