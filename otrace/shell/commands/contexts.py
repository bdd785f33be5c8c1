"""Trace contexts from the shell: save, del, resume.

Without ids they act on the context the current directory is in (also from one of its
``__up``/``__down`` frames -- the original refused there); with ids (globs allowed) on those
contexts, from any directory.
"""

from __future__ import annotations

from otrace.contexts import TraceContext
from otrace.errors import OTraceError
from otrace.shell.registry import Arg, Args, command
from otrace.shell.session import GLOBALS

IDS = (Arg("trace_id", "trace_id", optional=True, repeat=True),)


def _contexts(sh, words: list[str]) -> list[TraceContext]:
    if words:
        found = sh.store.find(words)
        if not found:
            raise OTraceError(f"No match for trace_id {' '.join(words)}")
        return found
    ctx = sh.context_root()
    if not isinstance(ctx, TraceContext):
        raise OTraceError(
            "No match for trace_id: not in a trace context (give ids, e.g. resume *hold_check*)"
        )
    return [ctx]


def _leave_if_inside(sh, ctxs: list[TraceContext]) -> None:
    here = sh.context_root()
    if here is not None and any(here is c for c in ctxs):
        sh.cwd = GLOBALS


@command("save", args=IDS)
def save(sh, args: Args) -> None:
    """Keep contexts in /osh/saved, where they are never evicted."""
    for ctx in _contexts(sh, args.words):
        sh.store.save(ctx)
        sh.out.write(f"Saved {ctx.id}")


@command("del", args=IDS)
def del_(sh, args: Args) -> None:
    """Delete contexts from /osh/recent and /osh/saved (a waiting hold or break is released)."""
    ctxs = _contexts(sh, args.words)
    for ctx in ctxs:
        sh.store.remove(ctx)
        sh.out.write(f"Deleted {ctx.id}")
    _leave_if_inside(sh, ctxs)


@command("resume", args=IDS)
def resume(sh, args: Args) -> None:
    """Let a held request or a stopped thread go on; then cd /osh/globals."""
    ctxs = _contexts(sh, args.words)
    failed = []
    for ctx in ctxs:
        if sh.runtime.holds.resume(ctx):
            sh.out.write(f"Resuming {ctx.id}")
        else:
            failed.append(ctx.id)
    sh.cwd = GLOBALS
    for trace_id in failed:
        sh.out.error(f"Unable to resume {trace_id} (nothing is waiting there)")
