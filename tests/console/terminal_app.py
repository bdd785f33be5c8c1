"""A small program with an object shell, for the terminal tests (run inside tmux).

SIGUSR1 makes the main thread announce a trace event, print and log a line, as a server's
other threads would while the operator types; SIGUSR2 records a pending break and asks the
console to refresh its prompt.  OTRACE_TEST_PIDFILE names a file for our pid.
"""

import logging
import os
import signal
import sys

import otrace
from otrace import holds, log
from otrace.contexts import TraceContext
from otrace.runtime import default

STORE, PARAMS = default().store, default().params

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="LOG %(message)s")


class Cart:
    """A shopping cart."""

    def __init__(self):
        self.items = []

    def add_item(self, name, price=1.0):
        self.items.append((name, price))
        return len(self.items)

    def total(self):
        return sum(price for _, price in self.items)


cart = Cart()
inventory = {"apples": 3, "pears": 5}


def on_usr1(signum, frame):
    log.announce("Cart.add_item:ex-ZeroDivisionError:event-from-main-thread")
    print("printed-by-program")
    logging.getLogger("app").info("logged-by-program")


def on_usr2(signum, frame):
    """A break became pending (as tracing would record it); the prompt must show BRK:."""
    ctx = TraceContext("breaks", "Cart.total")
    holds.new_break(ctx)  # registered as waiting, as the tracing engine does
    STORE.add(ctx)
    shell.console.refresh()


signal.signal(signal.SIGUSR1, on_usr1)
signal.signal(signal.SIGUSR2, on_usr2)
if os.environ.get("OTRACE_TEST_PIDFILE"):
    with open(os.environ["OTRACE_TEST_PIDFILE"], "w") as f:
        f.write(str(os.getpid()))

shell = otrace.OShell(globals(), allow_unsafe=True, new_thread=True)
PARAMS.set("safe_mode", False)
shell.loop()
shell.thread.join()  # the program's main thread waits (signals still run here)
