"""Splitting shell input lines: the shell's tokenizer against ``shlex.split`` (what it used).

    python benchmarks/shell_input.py [--quick]

Line shapes: one long word, many short words, one quoted word, escaped blanks.  Sizes: 10 kB
and 99 kB (about the longest line the shell takes, ``tokens.MAX_LINE``) for both, side by side
(cases alternate in rounds, medians reported); then 1 MB for the tokenizer alone (the limit
lifted; ``shlex`` needs tens of seconds there, so it runs once, and only without
``--quick``), and what the session does with a 1 MB line (refuses it in one line).
"""

from __future__ import annotations

import argparse
import shlex
import time

import _common
from _common import emit, interleave, machine, table

from otrace.shell import tokens
from otrace.shell.session import Session

SHAPES = {
    "one word": lambda n: "pr " + "a" * n,
    "short words": lambda n: "ls " + "ab " * (n // 3),
    "quoted": lambda n: "pr '" + "x" * n + "'",
    "escaped blanks": lambda n: "ls " + "a\\ " * (n // 3),
}


def timed(func, line: str) -> float:
    t0 = time.perf_counter()
    func(line)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    rounds = 3 if opts.quick else 7
    print(machine())
    rows = []
    for size in (10_000, 99_000):
        for shape, make in SHAPES.items():
            line = make(size)
            got = interleave(
                {
                    "shlex": lambda line=line: timed(shlex.split, line),
                    "tokenize": lambda line=line: timed(tokens.tokenize, line),
                },
                1 if size > 10_000 and opts.quick else rounds,
            )
            ratio = got["shlex"] / got["tokenize"]
            rows.append(
                (
                    f"{shape}, {size // 1000} kB",
                    f"{got['shlex'] * 1e3:.1f}",
                    f"{got['tokenize'] * 1e3:.2f}",
                    f"{ratio:.0f}x",
                )
            )
            emit(
                "tokenize", case=shape, chars=size, shlex_s=got["shlex"], tokenize_s=got["tokenize"]
            )
    table("splitting one line (ms)", rows, ("line", "shlex.split", "tokenize", "shlex/tokenize"))
    rows = []
    limit, tokens.MAX_LINE = tokens.MAX_LINE, 10**7
    try:
        for shape, make in SHAPES.items():
            line = make(1_000_000)
            mine = timed(tokens.tokenize, line)
            old = "-" if opts.quick else f"{timed(shlex.split, line):.2f}"
            rows.append((shape, old, f"{mine:.3f}"))
            emit("tokenize", case=shape, chars=1_000_000, tokenize_s=mine)
            _common.result(
                f"shell-input-tokenize-1mb-{_common.slug(shape)}-ms", mine * 1e3, "--", "--", "ms"
            )
    finally:
        tokens.MAX_LINE = limit
    session = Session({})
    try:
        t0 = time.perf_counter()
        result = session.execute("pr " + "a" * 1_000_000)
        refused = time.perf_counter() - t0
    finally:
        session.close()
    rows.append(("Session.execute (refused)", "-", f"{refused:.4f}"))
    table("a 1 MB line (s)", rows, ("line", "shlex.split", "tokenize"))
    print(f"  the session says: {result.err.strip()}")


if __name__ == "__main__":
    main()
