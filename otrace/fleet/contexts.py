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
        answers, wanted = _gather(asked, path, long, poll, interrupt)
        limit = max(limit, wanted)
        root = _root_of(path)
        for who, listing in sorted(answers.items()):
            if listing.error:
                result.error(f"[worker {who}] {listing.error}")
                continue
            total += listing.total
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


def _gather(
    asked: list[_members.Member],
    path: str,
    summaries: bool,
    poll: Poll | None,
    interrupt: Callable[[], Any] | None,
) -> tuple[dict[int, Listing], int]:
    """Every asked worker's listing of ``path``, enough of each for the fleet's newest
    ``ls_limit``; and that limit (0: none known).

    A worker whose ``ls_limit`` is known from an earlier listing is first asked for a share
    of it (twice its part of an even spread), not all of it: 9 workers send 9 x 222
    entries, not 9 x 1,000.  A worker that may have more entries among the newest
    ``ls_limit`` of the fleet than its share held is asked again for all of them.
    """

    def ask(member: _members.Member, limit: int = 0) -> Listing:
        return _ask(member, path, summaries, limit)

    def ask_all(members: list[_members.Member], limit: int) -> dict[int, Listing]:
        ask_one = functools.partial(ask, limit=limit) if limit else ask
        return _members.each(members, ask_one, lambda e: Listing([], error=str(e)), poll, interrupt)

    shares = {m.pid: _share(m.ls_limit, len(asked)) for m in asked if m.offers(CAPABILITY)}
    answers = _members.each(
        asked,
        lambda m: ask(m, shares.get(m.pid, 0)),
        lambda e: Listing([], error=str(e)),
        poll,
        interrupt,
    )
    good = [a for a in answers.values() if not a.error]
    wanted = max((a.ls_limit for a in good), default=0)
    for member in asked:
        got = answers.get(member.pid)
        if got is not None and got.ls_limit:
            member.ls_limit = got.ls_limit
    if not wanted:
        return answers, wanted
    times = sorted(e.created for a in good for e in a.entries)
    cutoff = times[-wanted] if len(times) >= wanted else float("-inf")
    again = [
        m
        for m in asked
        if shares.get(m.pid)
        and (got := answers[m.pid]).total > len(got.entries)  # it has more than it sent
        and not got.error
        and (not got.entries or got.entries[0].created >= cutoff)  # maybe among the newest
    ]
    if again:
        answers.update(ask_all(again, wanted))
    return answers, wanted


def _share(ls_limit: int, workers: int) -> int:
    """What to ask one of ``workers`` for first (0: its whole ``ls_limit``)."""
    if not ls_limit or workers < 3:
        return 0
    share = -(-2 * ls_limit // workers)
    return share if share < ls_limit else 0


def _split_pid(word: str) -> tuple[str, int | None]:
    """``path@pid`` -> (path, pid); a path without one -> (path, None)."""
    path, at, pid = word.rpartition("@")
    if at and pid.isdigit():
        return path, int(pid)
    return word, None


def _ask(member: _members.Member, path: str, summaries: bool, limit: int = 0) -> Listing:
    if member.offers(CAPABILITY):
        return member.list_contexts(path, limit, summaries=summaries)
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
