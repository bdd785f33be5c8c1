"""A program that writes trace contexts to a pickle file (run as a subprocess by the tests).

python persist_writer.py PATH rich          # one rich exception context + one call trace
python persist_writer.py PATH many N        # N small call traces
python persist_writer.py PATH forever       # small traces until killed; prints progress
python persist_writer.py PATH fork N        # forks two children, each writes N
"""

from __future__ import annotations

import json
import os
import sys
import time

import persist_shapes

from otrace.contexts import sqlite
from otrace.runtime import default

STORE, PARAMS = default().store, default().params


class MainOnly:
    """Defined in __main__: a reading process cannot import it."""

    def __init__(self) -> None:
        self.colour = "red"
        self.size = 3


def report() -> None:
    sqlite.flush(30)
    w = sqlite.writer()
    print(json.dumps({"pid": os.getpid(), **(w.stats() if w else {})}), flush=True)


def main() -> None:
    path, mode = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    sqlite.install(PARAMS, STORE)
    PARAMS.set_text("pickle_file", path)
    if mode == "rich":
        STORE.add(persist_shapes.make_context(3, extra=MainOnly()))
        STORE.add(persist_shapes.make_simple(1))
        report()
    elif mode == "many":
        for i in range(count):
            STORE.add(persist_shapes.make_simple(i))
        report()
    elif mode == "forever":
        i = 0
        while True:
            for _ in range(20):
                STORE.add(persist_shapes.make_simple(i))
                i += 1
            sqlite.flush(30)
            print(f"committed {sqlite.writer().written}", flush=True)
            time.sleep(0.001)
    elif mode == "fork":
        STORE.add(persist_shapes.make_simple(-1))
        children = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                for i in range(count):
                    STORE.add(persist_shapes.make_simple(i))
                flushed = sqlite.flush(30)
                w = sqlite.writer()
                if w.written != count:  # say why, for the test's failure message
                    print(
                        json.dumps({"child": os.getpid(), "flushed": flushed, **w.stats()}),
                        file=sys.stderr,
                        flush=True,
                    )
                os._exit(0 if w.written == count else 3)
            children.append(pid)
        codes = [os.waitpid(pid, 0)[1] for pid in children]
        STORE.add(persist_shapes.make_simple(-2))
        report()
        print(json.dumps({"children": children, "codes": codes}), flush=True)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
