"""Answers of many workers shown as one: grouped by identical output, labelled by pid.

Thread safety: pure functions.
"""

from __future__ import annotations

from otrace.shell.output import Result

Chunks = tuple[tuple[str, str, str], ...]


def label(pids: list[int], total: int) -> str:
    if len(pids) == total and total > 1:
        return f"all {total} workers"
    if len(pids) == 1:
        return f"worker {pids[0]}"
    return "workers " + ", ".join(str(p) for p in sorted(pids))


def merge(answers: dict[int, Result]) -> Result:
    """One result for the answers of several workers: each distinct output once, headed by
    the workers that gave it (``[all 4 workers] Tracing Work.step``)."""
    groups: dict[Chunks, list[int]] = {}
    for pid in sorted(answers):
        key = tuple(answers[pid].chunks)
        groups.setdefault(key, []).append(pid)
    merged = Result()
    total = len(answers)
    for chunks, pids in groups.items():
        if not chunks:
            if len(groups) > 1:
                merged.chunks.append(("out", f"[{label(pids, total)}] (no output)", "text"))
            continue
        head = f"[{label(pids, total)}]"
        if len(chunks) == 1 and "\n" not in chunks[0][1]:
            stream, text, _kind = chunks[0]
            merged.chunks.append((stream, f"{head} {text}", "text"))
        else:
            merged.chunks.append(("out", head, "text"))
            merged.chunks.extend(chunks)
    return merged


def failed(result: Result) -> bool:
    return any(stream == "err" for stream, _, _ in result.chunks)
