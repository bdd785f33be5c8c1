"""Figure 4b: what one recorded context costs in machine instructions, and where they go.

    python benchmarks/instructions.py [--quick] [--case call|exception]

Time per context (figure 4) moves by a third when other work shares a two-core machine;
the number of instructions the traced thread executes does not.  Each case runs the loop
of ``recording.py`` (a ``-c call`` trace on a four-argument function, or an exceptions-only
trace raising at the bottom of a 20-frame stack) in a child process under valgrind's
callgrind, with instrumentation switched on only around the timed loop
(``callgrind_control -i on/off``); the figure is instructions per iteration, traced minus
untraced.  "Parts" run the same traced loop with one step of recording replaced by a
function that does nothing (the stack walk, the formatting of the arguments, filing in the
store, the announcement; for exceptions the whole capture of the frames): the difference is
what that step costs.  "Nobody listening" is the call loop with no console and no handler on
the announce logger (the argument text then waits until read); "freeze" the ``pickle_file``
freeze alone, of exception contexts captured before the loop.

Needs valgrind (Debian's ``valgrind`` package); without it the script says so and exits 0.
About 10-20 s per case here.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import callgrind_per_iteration, emit, machine, result, table

HERE = Path(__file__).resolve().parent

# what a part's stub replaces (see child())
PARTS = {
    "call": ("stack walk", "argument text", "store", "announcement"),
    # (not the store: without it a context is never unlinked, and its frames' reference
    # cycles go to the garbage collector instead -- more work, not less)
    "exception": ("capture of the frames", "announcement"),
}


def child(case: str, stub: str, n: int) -> None:
    """The measured process: set up, say READY, run the loop once on "go", say DONE."""
    import recording

    from otrace import recorder
    from otrace.contexts import call_stack, capture
    from otrace.log import add_sink
    from otrace.runtime import default
    from otrace.tracing import handlers, trace

    if stub != "nobody listening":  # (else: no console, no handler -- see Recorder.heard)
        add_sink(lambda text: None)
    rt = default()
    rt.params.set("trace_handled", True)
    base, mod = recording.make(), recording.make()
    order = mod.Order(3)
    trace(mod.sell, mod, "sell", condition="call")
    trace(mod.fail, mod, "fail")
    if stub == "stack walk":
        call_stack.capture_call_stack = lambda frame: None  # type: ignore[assignment,return-value]
    elif stub == "argument text":  # (what _record calls: C inside, else Python)
        handlers.args_text = lambda varargs, bound: ""
    elif stub == "capture of the frames":
        capture.capture_exception = lambda *args, **kw: ({}, {})  # type: ignore[assignment]
    elif stub == "store":
        rt.store.add = lambda ctx: None  # type: ignore[method-assign]
    elif stub == "announcement":
        recorder.Recorder.announce = lambda self, text, **kw: None  # type: ignore[method-assign]
    traced = not case.endswith(" untraced")
    if case.startswith("freeze"):
        loop = _freeze_loop(rt, mod, order, n, traced)
    elif case.startswith("call"):
        f = mod.sell if traced else base.sell

        def loop() -> None:
            for _ in range(n):
                mod.deep(19, f, order, 5, "x", {"fast": True, "tags": ["a", "b"]})
    else:
        g = mod.fail if traced else base.fail

        def loop() -> None:
            for _ in range(n):
                try:
                    mod.deep(19, g, order, 5)
                except ValueError:
                    pass

    loop()  # warm: caches, code objects, the store at its max_recent
    print("READY", flush=True)
    sys.stdin.readline()
    loop()
    print("DONE", flush=True)
    sys.stdin.readline()


# contexts for the freeze case: a global, so that no frame of the capturing thread holds the
# list (a frame's container is what the freeze copies)
_MADE: list = []


def _capture(rt: Any, mod: Any, order: Any) -> None:
    for _ in range(50):
        try:
            mod.deep(19, mod.fail, order, 5)
        except ValueError:
            pass
        _MADE.append(rt.store.newest)


def _freeze_loop(rt: Any, mod: Any, order: Any, n: int, traced: bool) -> Callable[[], None]:
    """The pickle_file freeze of exception contexts captured beforehand on a thread of their
    own (a made function: child()'s frame stays what the other cases capture)."""
    from otrace.contexts.freeze import freeze_context

    thread = threading.Thread(target=_capture, args=(rt, mod, order))
    thread.start()
    thread.join()
    contexts = itertools.cycle(_MADE)

    def loop() -> None:
        for _ in range(n):
            ctx = next(contexts)
            if traced:
                freeze_context(ctx, 1)

    return loop


def count(case: str, stub: str, n: int) -> float:
    """Instructions per iteration of ``case`` (with ``stub``), counted by callgrind."""
    argv = [str(Path(__file__).resolve()), "--child", case, stub, str(n)]
    return callgrind_per_iteration(argv, n, f"{case}/{stub}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "STUB", "N"))
    parser.add_argument(
        "--case", choices=("call", "exception"), help="only this context (and no freeze)"
    )
    opts = parser.parse_args()
    if opts.child:
        case, stub, n = opts.child
        child(case, stub, int(n))
        return
    print(machine())
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("instructions.py: valgrind not found (apt-get install -y valgrind); skipped")
        return
    n = 500 if opts.quick else 2000
    rows = []
    for kind in (opts.case,) if opts.case else ("call", "exception"):
        untraced = count(f"{kind} untraced", "", n)
        traced = count(kind, "", n)
        added = traced - untraced
        rows.append((f"{kind}: traced minus untraced", f"{added:,.0f}", "100 %"))
        result(f"4b-{kind}-context-instructions", added, "--", "--", "instr")
        parts = {}
        for part in PARTS[kind]:
            parts[part] = traced - count(kind, part, n)
            rows.append((f"  of which {part}", f"{parts[part]:,.0f}", f"{parts[part] / added:.0%}"))
        rest = added - sum(parts.values())
        rows.append(
            ("  the rest (probe, context, bookkeeping)", f"{rest:,.0f}", f"{rest / added:.0%}")
        )
        if kind == "call":
            quiet = count(kind, "nobody listening", n) - untraced
            rows.append(("call, nobody listening: traced minus untraced", f"{quiet:,.0f}", ""))
            result("4b-call-context-nobody-listening-instructions", quiet, "--", "--", "instr")
        emit("instructions", case=kind, untraced=untraced, added=added, **parts)
    if not opts.case:
        frozen = count("freeze", "", n) - count("freeze untraced", "", n)
        rows.append(("pickle_file freeze of an exception context", f"{frozen:,.0f}", ""))
        result("4b-freeze-instructions", frozen, "--", "--", "instr")
    table(
        f"4b. Instructions per recorded context (callgrind, {n} iterations per case)",
        rows,
        ("case", "instructions", "share"),
    )


if __name__ == "__main__":
    main()
