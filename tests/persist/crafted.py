"""A crafted context file: a record whose pickles run code, and names with escape sequences.

``craft(path, marker)`` writes a file otrace accepts (right format marker and schema) holding
one record.  Loading it with full ``pickle`` creates ``marker`` (twice over: ``os.system``
from a stored value and ``exec`` from the record itself); loading it as data must not.
Shared by the persistence, traceback page and notebook tests.
"""

from __future__ import annotations

import builtins
import os
import pickle
from pathlib import Path

from otrace.contexts.sanitize import Blob
from otrace.contexts.sqlite_format import INSERT, connect

KIND = "exceptions"
NAME = "Evil\x1b[2J.run"  # clears the screen if printed raw
CTXID = "ex-Boom"
STAMP = "261202-04-00-00"
TRACE_ID = f"{NAME}:{CTXID}:{STAMP}"
OSC52 = "\x1b]52;c;b3duZWQ=\x07"  # writes the clipboard if printed raw


class Call:
    """Pickles as ``func(*args)``: what a malicious file would contain."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def craft(path: Path, marker: Path) -> str:
    """Write the crafted file; return its trace id."""
    touch = f"touch {marker}"
    write = f"with open({str(marker)!r}, 'a') as f: f.write('exec ran\\n')"
    value = Blob(pickle.dumps(Call(os.system, touch), 5), "Point", "shapes", "Point(x=1)")
    values = {
        "evil": value,
        "direct": Call(builtins.exec, write),
        "count": 3,
        OSC52 + "name": "looks like a local",
        "text": "plain " + OSC52,
    }
    trc = {
        "id": TRACE_ID,
        "context": KIND,
        "frame": ("evil.py", 2, "run", ["def run():\n", "    boom()\n", "\n"]),
        "module": "evil",
        "funcname": "run",
        "\x1b[2Jfield": "x",
    }
    record = pickle.dumps({"frames": [(values, trc)], "root": 0}, 5)
    conn = connect(path, create=True)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(INSERT, (TRACE_ID, KIND, NAME, CTXID, STAMP, 0.0, 4242, record))
        conn.execute("COMMIT")
    finally:
        conn.close()
    return TRACE_ID
