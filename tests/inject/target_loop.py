"""A program that never imports otrace: it ticks, and says when otrace appears in it.

python target_loop.py [PAUSE]    prints "ready", then "tick N" every 0.2 s (with PAUSE, its
                                 main thread sleeps PAUSE s in one call between ticks); when
                                 otrace.bootstrap shows up in sys.modules it prints
                                 "INJECTED <json>" (the start-up's facts, the thread it ran on)
"""

import json
import sys
import threading
import time

print("ready otrace-imported=%s" % ("otrace" in sys.modules), flush=True)


def busy() -> None:
    # another thread doing Python work the whole time: start-up must not run on it
    n = 0
    while True:
        n += 1
        if n % 100000 == 0:
            time.sleep(0.001)


threading.Thread(target=busy, name="busy", daemon=True).start()
pause = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
seen = False
tick = 0
while True:
    time.sleep(0.01)
    if pause:
        time.sleep(pause)
        tick += 19
    tick += 1
    if tick % 20 == 0:
        print(f"tick {tick}", flush=True)
    if not seen and "otrace.bootstrap" in sys.modules:
        seen = True
        started = sys.modules["otrace.bootstrap"].STARTED
        names = sorted(k for k in vars(sys.modules["__main__"]) if not k.startswith("__"))
        print("INJECTED " + json.dumps({"started": started, "main_names": names}), flush=True)
