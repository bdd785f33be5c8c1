"""Replay the console transcripts of a tutorial (docs/*.rst) against the real demo program.

A transcript is a literal block whose first line starts a demo, e.g.
``tornademos$ python hello_trace.py``; the literal blocks after it that contain prompt lines
(``globals> ls``) continue the same session, until ``shutdown -y`` (or ``quit`` of a program
that ends with its console).  Between blocks, invisible rst
comments tell the replay what a browser would do meanwhile::

    .. tutorial: fetch /?number=77

A block preceded by ``.. tutorial: not replayed`` is left out (e.g. ``repeat``, which
redraws the screen).  The demo runs in a tmux pane (:class:`TmuxTerminal`); each prompt
line of the transcript whose command has not been typed yet is typed when the program shows
that prompt, and the whole pane must read like the transcript, after :func:`normalise`
(timestamps, addresses, ports and the checkout's directory differ from run to run).

``python -m tests.compat.tutorial_replay docs/GettingStarted.rst`` prints what the program
really shows, in transcript form (to update a tutorial after a deliberate change).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.compat.tmux_terminal import TmuxTerminal, demo_env
from tests.tmux import wait_until

ROOT = Path(__file__).resolve().parents[2]
PROMPT = re.compile(r"^([\w.|;=\-<>]+?>)(?: (.*))?$")
START = re.compile(r"^(?:tornademos\$ python (\S+\.py)|\$ \.venv/bin/otrace (.+?))\s*$")
WIDTH = 100

_RULES = [
    (re.compile(r"\d{6}-\d\d-\d\d-\d\d(\.\d+)?"), "<ts>"),
    (re.compile(r"\.\.\d\d-\d\d(-\d\d)?(\.\d+)?>"), "..<ts>>"),
    (re.compile(r"0x[0-9a-f]{6,}"), "0x<addr>"),
    (re.compile(r"(127\.0\.0\.1|localhost):\d+"), r"\1:<port>"),
    (re.compile(r"\('127\.0\.0\.1', \d+\)"), "('127.0.0.1', <port>)"),
    (re.compile(r"Python-urllib/3\.\d+"), "Python-urllib/3.x"),
    (re.compile(r"(?<![\w.])/\S*/tornademos\b"), "<dir>/tornademos"),
]


def normalise(line: str) -> str:
    """What must match between a transcript line and the terminal (run-specific parts out).

    A traceback's marker lines (``~~~^~~``) differ between Python versions: they count as
    blank lines (which are layout, not compared)."""
    if re.fullmatch(r"\s*[~^]+\s*", line):
        return ""
    line = line.replace(str(ROOT), "<root>").replace("/home/you/otrace", "<root>")
    for rx, repl in _RULES:
        line = rx.sub(repl, line)
    return line.rstrip()


@dataclass
class Session:
    """One run of a demo: its script, the transcript lines and the browser steps."""

    script: str
    lines: list[str] = field(default_factory=list)  # transcript, without the start line
    steps: dict[int, list[str]] = field(default_factory=dict)  # line index -> directives
    blocks: list[tuple[int, int, int, int]] = field(default_factory=list)
    # (first file line, end file line, indent, first index in lines) of each block


def parse(path: Path) -> list[Session]:
    """The transcripts of an rst file, in order."""
    sessions: list[Session] = []
    current: Session | None = None
    pending: list[str] = []
    skip = False
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = re.match(r"^\.\. tutorial: (.*)$", line)
        if directive:
            if directive.group(1).strip() == "not replayed":
                skip = True
            else:
                pending.append(directive.group(1).strip())
            i += 1
            continue
        if line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
            first = i + 1
            block, i, indent = _literal_block(lines, i + 1)
            if not block:
                continue
            if skip:
                skip = False
                continue
            start = START.match(block[0])
            if start:
                current = Session(start.group(1) or f"otrace {start.group(2)}")
                sessions.append(current)
                block = block[1:]
            elif current is None or not any(PROMPT.match(b) for b in block):
                continue
            if pending:
                current.steps.setdefault(len(current.lines), []).extend(pending)
                pending = []
            current.blocks.append((first, i, indent, len(current.lines)))
            current.lines.extend(block)
            continue
        i += 1
    return sessions


def _literal_block(lines: list[str], i: int) -> tuple[list[str], int, int]:
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or not lines[i].startswith(" "):
        return [], i, 0
    indent = len(lines[i]) - len(lines[i].lstrip())
    block = []
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" " * indent)):
        block.append(lines[i][indent:].rstrip())
        i += 1
    while block and not block[-1]:
        block.pop()
        i -= 1
    return block, i, indent


class Browser:
    """Requests a browser would make to the demo, in background threads."""

    def __init__(self, port: int):
        self.port = port
        self.threads: list[threading.Thread] = []
        self.answers: dict[str, str] = {}

    def fetch(self, query: str) -> None:
        def get() -> None:
            url = f"http://127.0.0.1:{self.port}{query}"
            try:
                with urllib.request.urlopen(url, timeout=30) as resp:
                    self.answers[query] = resp.read().decode()
            except Exception as exc:  # the test reports what the browser got
                self.answers[query] = f"error: {exc}"

        thread = threading.Thread(target=get, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(30)


def _is_idle_prompt(line: str) -> bool:
    m = PROMPT.match(line)
    return bool(m) and not m.group(2)


def _screen(term: TmuxTerminal) -> list[str]:
    return [normalise(line) for line in term.history()]


def _wait(term: TmuxTerminal, ready, what: str, timeout: float = 30) -> list[str]:
    seen: list[str] = []

    def check() -> list[list[str]]:
        seen[:] = _screen(term)
        return [seen] if ready(seen) else []

    failure = f"timed out waiting for {what}; screen:\n"
    return wait_until(check, timeout, lambda: failure + "\n".join(seen))[0]


def start(session: Session, tmp: Path) -> TmuxTerminal:
    env = demo_env(tmp)
    if session.script.startswith("otrace "):  # `$ .venv/bin/otrace ARGS`, from the checkout
        args = session.script.split()[1:]
        if args == ["demo"]:
            args += ["--port", "0"]
        return TmuxTerminal([sys.executable, "-m", "otrace", *args], ROOT, env, width=WIDTH)
    return TmuxTerminal(
        [sys.executable, session.script, "--port=0"], ROOT / "tornademos", env, width=WIDTH
    )


def _type(term: TmuxTerminal, command: str, before: int) -> list[str]:
    term.type(command)
    term.send("Enter")
    if command.strip() in ("quit", "shutdown -y"):
        hist = _wait(
            term,
            lambda h: (
                bool(h) and (h[-1].startswith(("Server stopped", "Pane is dead")) or _ended(term))
            ),
            "the program to stop",
        )
        return [h for h in hist if not h.startswith("Pane is dead")]
    return _wait(
        term,
        lambda h: len(h) > before and _is_idle_prompt(h[-1]),
        f"the prompt after {command!r}",
    )


def _ended(term: TmuxTerminal) -> bool:
    """The pane's program has exited, even if tmux has not reaped it yet (a zombie: under
    load tmux can take seconds to mark the pane dead)."""
    pid = term.tmux("display", "-p", "-t", "t", "#{pane_pid}").strip()
    if not pid.isdigit():
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _fetch(term: TmuxTerminal, browser: Browser, step: str, before: int) -> list[str]:
    """Make a browser request; wait until it is answered or the console shows something
    (a held request is never answered meanwhile)."""
    verb, _, arg = step.partition(" ")
    assert verb == "fetch", f"unknown tutorial step {step!r}"
    browser.fetch(arg)
    thread = browser.threads[-1]
    return _wait(
        term,
        lambda h: (len(h) > before or not thread.is_alive()) and _is_idle_prompt(h[-1]),
        f"the program's answer to {arg}",
    )


def replay(session: Session, tmp: Path, record: bool = False) -> list[str]:
    """Run ``session``; assert that the pane reads like its transcript (with ``record``:
    just type its commands).  Returns the pane's normalised lines."""
    term = start(session, tmp)
    browser: Browser | None = None
    steps = {k: list(v) for k, v in session.steps.items()}
    try:
        hist = _wait(term, lambda h: bool(h) and _is_idle_prompt(h[-1]), "the first prompt")
        listening = re.search(r"Listening on \S+:(\d+)", "\n".join(term.history()))
        browser = Browser(int(listening.group(1)) if listening else 0)
        expected = [normalise(x) for x in session.lines]
        i = j = 0
        while i < len(expected):
            for step in steps.pop(i, []):
                hist = _fetch(term, browser, step, len(hist))
            at_prompt = j == len(hist) - 1 and _is_idle_prompt(hist[j])
            m = PROMPT.match(expected[i])
            if record:
                if m and m.group(2) and expected[i] not in hist[j:-1]:
                    hist = _type(term, session.lines[i].split("> ", 1)[1], len(hist))
                if m and m.group(2):
                    j = hist.index(expected[i], j) + 1
                i += 1
                continue
            if not at_prompt:
                # blank lines (a block's end, ls -l's spacing) are layout: not compared
                if not expected[i]:
                    i += 1
                    continue
                if j < len(hist) and not hist[j]:
                    j += 1
                    continue
                if j >= len(hist):  # more is expected after a prompt line: printed late
                    n = j
                    hist = _wait(term, lambda h: len(h) > n, f"transcript line {i + 1}")
                    continue
                if expected[i] != hist[j]:
                    raise AssertionError(_mismatch(expected, hist, i, j, session.script))
                i += 1
                j += 1
                continue
            assert m and m.group(2) and m.group(1) == hist[j].strip(), (
                f"{session.script}: the program waits at {hist[j]!r} but the transcript goes "
                f"on with {session.lines[i]!r}"
            )
            hist = _type(term, session.lines[i].split("> ", 1)[1], len(hist))
        if not record:
            tail = [h for h in hist[j:] if h]
            assert not tail, f"{session.script}: the program printed more:\n" + "\n".join(tail)
        return [line.rstrip() for line in term.history()]
    finally:
        term.close()
        if browser is not None:
            browser.join()


def _mismatch(expected: list[str], hist: list[str], i: int, j: int, script: str) -> str:
    got = repr(hist[j]) if j < len(hist) else "nothing more (yet)"
    return (
        f"{script}: transcript line {i + 1} differs\n  expected: {expected[i]!r}\n"
        f"  got:      {got}\ncontext (program):\n" + "\n".join(hist[max(0, j - 8) : j + 3])
    )


def _start_line(script: str) -> str:
    if script.startswith("otrace "):
        return f"$ .venv/bin/{script}"
    return f"tornademos$ python {script}"


def _tidy(line: str, port: str) -> str:
    """A transcript line as a reader would see it: the default port, a home directory."""
    line = line.replace(str(ROOT), "/home/you/otrace")
    if port:
        line = re.sub(rf"(127\.0\.0\.1:|127\.0\.0\.1', ){port}\b", r"\g<1>8888", line)
    return line


def rewrite(path: Path, tmp: Path) -> None:
    """Replace the transcripts of ``path`` with what the programs print now."""
    text = path.read_text().splitlines()
    edits: list[tuple[int, int, list[str]]] = []
    for session in parse(path):
        raw = replay(session, tmp, record=True)
        if raw and raw[-1].startswith("Pane is dead"):
            raw.pop()
        port = re.search(r"Listening on \S+:(\d+)", "\n".join(raw))
        raw = [_tidy(x, port.group(1) if port else "") for x in raw]
        norm = [normalise(x) for x in raw]
        starts = []
        j = 0
        ends = [b[3] for b in session.blocks[1:]] + [len(session.lines)]
        for (_first, _end, _indent, index), stop in zip(session.blocks, ends):
            k = next((n for n in range(index, stop) if PROMPT.match(session.lines[n])), None)
            line = normalise(session.lines[k]) if k is not None else ""
            if k is None or line not in norm[j:]:
                starts.append(j)
                continue
            found = norm.index(line, j)
            starts.append(max(found - (k - index), j))
            j = found + 1
        starts[0] = 0
        for n, (first, end, indent, _index) in enumerate(session.blocks):
            stop = starts[n + 1] if n + 1 < len(starts) else len(raw)
            chunk = raw[starts[n] : stop]
            if n == 0:
                chunk = [_start_line(session.script), *chunk]
            while chunk and not chunk[-1]:
                chunk.pop()
            edits.append((first, end, [" " * indent + x if x else "" for x in chunk]))
    for first, end, new in sorted(edits, reverse=True):
        while first < end and not text[first].strip():
            first += 1
        text[first:end] = new
    path.write_text("\n".join(text) + "\n")


if __name__ == "__main__":  # print (or --write) the real transcripts of a tutorial
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        if "--write" in sys.argv:
            rewrite(Path(sys.argv[1]), Path(d))
        else:
            for s in parse(Path(sys.argv[1])):
                print(f"=== {_start_line(s.script)}")
                print("\n".join(replay(s, Path(d), record=True)))
    os._exit(0)
