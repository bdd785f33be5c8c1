"""Trace contexts from the shell: save, del, resume.

Without ids they act on the context the current directory is in (also from one of its
``__up``/``__down`` frames -- the original refused there); with ids (globs allowed) on those
contexts, from any directory.
"""

from __future__ import annotations

from otrace.contexts import TraceContext
from otrace.errors import OTraceError, UsageError
from otrace.shell import evaluate
from otrace.shell.registry import Arg, Args, Option, command
from otrace.shell.session import GLOBALS

IDS = (Arg("trace_id", "trace_id", optional=True, repeat=True),)


def _contexts(sh, words: list[str], verb: str) -> list[TraceContext]:
    if words:
        found = sh.store.find(words)
        if not found:
            raise OTraceError(f"No match for trace_id {' '.join(words)}")
        return found
    ctx = sh.context_root()
    if not isinstance(ctx, TraceContext):
        raise OTraceError(
            f"{verb}: not in a trace context; cd into one (cd ~~) or give ids: {verb} ID..."
            + (" (globs work: resume *hold_check*)" if verb == "resume" else "")
        )
    return [ctx]


def _leave_if_inside(sh, ctxs: list[TraceContext]) -> None:
    here = sh.context_root()
    if here is not None and any(here is c for c in ctxs):
        sh.cwd = GLOBALS


@command("save", args=IDS)
def save(sh, args: Args) -> None:
    """Keep contexts in /osh/saved, where they are never evicted."""
    for ctx in _contexts(sh, args.words, "save"):
        if sh.store.save(ctx):
            sh.out.write(f"Saved {ctx.id}")
        else:
            sh.out.write(f"Not saved (the store is busy; try again): {ctx.id}")


@command("del", args=IDS)
def del_(sh, args: Args) -> None:
    """Delete contexts from /osh/recent and /osh/saved (a waiting hold or break is released)."""
    ctxs = _contexts(sh, args.words, "del")
    for ctx in ctxs:
        sh.store.remove(ctx)
        sh.out.write(f"Deleted {ctx.id}")
    _leave_if_inside(sh, ctxs)


RESUME_OPTIONS = (
    Option(
        "r",
        "raise this exception in the held code",
        value="EXC",
        long="raise",
        unsafe="evaluating code",
    ),
    Option(
        "v",
        "the value the held await returns",
        value="EXPR",
        long="value",
        unsafe="evaluating code",
    ),
)


@command("resume", options=RESUME_OPTIONS, args=IDS)
def resume(sh, args: Args) -> None:
    """Let a held request or a stopped thread go on; then cd /osh/globals.

    --raise EXC makes the held await raise EXC (an exception class or instance, e.g.
    --raise 'HTTPError(503)' or --raise TimeoutError), so the request fails as if its own
    code had raised it.  --value EXPR is what the held await returns (for
    traceassert(..., action="hold")).  Both are evaluated here, in the current directory;
    both need safe_mode False and work on holds only.
    """
    error, value = _resume_payload(sh, args)
    ctxs = _contexts(sh, args.words, "resume")
    failed = []
    # all at once: one loop callback wakes every hold (10,000 holds: one trip, not 10,000)
    released = {c.id for c in sh.runtime.holds.resume_many(ctxs, value, error=error)}
    for ctx in ctxs:
        if ctx.id in released:
            sh.out.write(f"Resuming {ctx.id}" + (f" with {type(error).__name__}" if error else ""))
        else:
            failed.append(ctx.id)
    sh.cwd = GLOBALS
    for trace_id in failed:
        why = (
            "nothing is waiting there"
            if error is None or sh.runtime.holds.get(trace_id) is None
            else "--raise works on holds only"
        )
        sh.out.error(f"Unable to resume {trace_id} ({why})")


def _resume_payload(sh, args: Args) -> tuple[BaseException | None, object]:
    raise_text, value_text = args.opts.get("r"), args.opts.get("v")
    if raise_text is None and value_text is None:
        return None, None
    if raise_text is not None and value_text is not None:
        raise UsageError("resume: give --raise or --value, not both")
    text = str(raise_text if raise_text is not None else value_text)
    try:
        result = evaluate.evaluate(text, sh.eval_globals(), sh.namespace())
    except Exception as exc:
        raise OTraceError(
            f"resume: cannot evaluate {text!r}: {type(exc).__name__}: {exc}"
        ) from None
    if value_text is not None:
        return None, result
    if isinstance(result, type) and issubclass(result, BaseException):
        try:
            result = result()
        except Exception as exc:
            raise OTraceError(f"resume: cannot make {text}(): {exc}") from None
    if not isinstance(result, BaseException):
        raise UsageError(f"resume: --raise needs an exception, not {type(result).__name__}")
    return result, None
