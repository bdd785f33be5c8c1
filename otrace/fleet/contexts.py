"""``ls /osh/recent`` (and ``/osh/saved``) at the fleet level: every worker's contexts as one
listing, oldest first, each named ``...@<pid>``.

A worker whose service offers the ``list`` message (:mod:`otrace.service.listing`) sends its
newest ``ls_limit`` entries as data; the fleet keeps the newest ``ls_limit`` of them all and
says how many it left out.  An older worker, without it, is asked for ``ls
ROOT/*/*/*/*`` and its text is read back into entries (the same listing, slower).

``ls -l`` adds each context's time (UTC) and summary (its arguments or exception).  A path may
name one worker's context (``/osh/recent/.../<timestamp>@4243``): only that worker is asked.

Thread safety: :func:`list_contexts` runs on the console thread (it asks the workers on
threads of its own, through :func:`~otrace.fleet.members.each`).
"""

from __future__ import annotations

import calendar
import fnmatch
import functools
import time
from collections.abc import Callable
from typing import Any

from otrace.console.backend import Poll
from otrace.contexts.safe import escape_controls
from otrace.fleet import members as _members
from otrace.service.listing import CAPABILITY, DEPTH, Entry, ListError, Listing, parse_path
from otrace.shell.output import Result

ROOTS = ("/osh/recent", "/osh/saved")


def wants(words: list[str]) -> bool:
    """Whether ``words`` (an ``ls`` line) lists contexts at the fleet level."""
    return bool(words) and words[0] == "ls" and any(_root_of(w) for w in words[1:])


def _root_of(word: str) -> str:
    return next((r for r in ROOTS if word == r or word.startswith(r + "/")), "")


def list_contexts(
    members: list[_members.Member],
    words: list[str],
    poll: Poll | None = None,
    interrupt: Callable[[], Any] | None = None,
) -> Result:
    """The answer to ``ls [-l] PATH...`` (paths below /osh/recent or /osh/saved)."""
    long = any(w.startswith("-") and "l" in w for w in words[1:])
    result = Result()
    rows: list[tuple[float, str, int, str]] = []  # (created, path, pid, summary)
    total = limit = 0
    for word in dict.fromkeys(w.rstrip("/") for w in words[1:] if _root_of(w)):
        path, pid = _split_pid(word)
        try:
            parse_path(path)
        except ListError as exc:
            result.error(str(exc).replace("list: ", "ls: ", 1))
            continue
        asked = [m for m in members if pid is None or m.pid == pid]
        if not asked:
            result.error(f"ls: no worker {pid} in this fleet (ls /osh/workers)")
            continue
        answers = _members.each(
            asked,
            functools.partial(_ask, path=path, summaries=long),
            lambda e: Listing([], error=str(e)),
            poll,
            interrupt,
        )
        root = _root_of(path)
        for who, listing in sorted(answers.items()):
            if listing.error:
                result.error(f"[worker {who}] {listing.error}")
                continue
            total += listing.total
            limit = max(limit, listing.limit)
            rows += [(e.created, f"{root}/{e.name}", who, e.summary) for e in listing.entries]
    rows.sort()
    shown = rows[-limit:] if limit and len(rows) > limit else rows
    for created, path, pid, summary in shown:
        name = escape_controls(f"{path}@{pid}")
        if long:
            result.write(f"{_clock(created)}  {name}  {escape_controls(summary)}".rstrip())
        else:
            result.write(name)
    if total > len(shown):
        result.error(
            f"ls: showing the newest {len(shown)} of {total} contexts "
            "(set ls_limit, or ls a narrower path)"
        )
    if not rows and not result.chunks:
        result.write(f"(no contexts in {len(members)} workers)")
    return result


def _split_pid(word: str) -> tuple[str, int | None]:
    """``path@pid`` -> (path, pid); a path without one -> (path, None)."""
    path, at, pid = word.rpartition("@")
    if at and pid.isdigit():
        return path, int(pid)
    return word, None


def _ask(member: _members.Member, path: str, summaries: bool) -> Listing:
    if member.offers(CAPABILITY):
        return member.list_contexts(path, summaries=summaries)
    return _from_text(member, path)


def _from_text(member: _members.Member, path: str) -> Listing:
    """The listing of a worker that does not offer ``list``: its ``ls`` lines as entries
    (no summaries; times from the timestamps in the names)."""
    root, prefix = parse_path(path)
    pattern = f"/osh/{root}" + "/*" * DEPTH
    answer = member.execute(f"ls {pattern}")
    base = f"/osh/{root}/"
    entries: list[Entry] = []
    notes: list[str] = []
    for stream, text, _ in answer.chunks:
        if stream != "out" or not text.lstrip().startswith(base):
            notes.append(text.strip())  # an error, ls_limit reached
            continue
        for word in text.split():  # ``ls`` puts several paths on a line: names have no blanks
            if not word.startswith(base):
                continue
            parts = tuple(word[len(base) :].split("/"))
            if len(parts) == DEPTH and all(map(fnmatch.fnmatchcase, parts, prefix)):
                entries.append(Entry("/".join(parts), parts[0], _epoch(parts[3]), ""))
    if not entries and notes and any(s == "err" for s, _, _ in answer.chunks):
        return Listing([], error="; ".join(notes))
    return Listing(entries, len(entries), 0)


def _epoch(timestamp: str) -> float:
    """Seconds since the epoch of a context timestamp (``YYMMDD-HH-MM-SS[.frac]``, UTC)."""
    whole, _, frac = timestamp.partition(".")
    try:
        base = calendar.timegm(time.strptime(whole, "%y%m%d-%H-%M-%S"))
    except ValueError:
        return 0.0
    return base + (float(f"0.{frac}") if frac.isdigit() else 0.0)


def _clock(created: float) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(created))
    return f"{stamp}.{int(created % 1 * 1000):03d}"
