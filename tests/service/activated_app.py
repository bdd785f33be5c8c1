"""A program that installs otrace to wake on SIGUSR1 (``OTRACE_ACTIVATE`` or the argument).

Prints ``READY threads=N`` once installed, then idles; SIGTERM ends it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import otrace

answer = 42
otrace.install(activate_on=None if os.environ.get("OTRACE_ACTIVATE") else "SIGUSR1")
print(f"READY threads={threading.active_count()}", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
while not stop.wait(0.5):
    pass
sys.exit(0)
