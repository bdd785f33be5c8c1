"""Run code as if a finalizer ran at every point CPython may run one.

A collection (and so a program object's ``__del__`` or a weakref callback) or a Python signal
handler runs on the thread that happens to be at an *eval-breaker* check: when a call
returns, when a loop jumps back, when a Python function starts (3.12+ runs the collector
only there; 3.11 also inside any allocation of a tracked object).  :func:`run_with_finalizers`
traces every opcode of a scenario on a thread of its own and, at each such point where
``held()`` says an otrace lock is held, calls ``reenter()`` there -- what a finalizer that
enters otrace again would do.  A deadlock shows as a thread that does not finish in time;
``unwedge()`` then frees it (a plain lock may be released by another thread), so no test
leaves a thread hung.
"""

from __future__ import annotations

import dis
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# calls check the eval breaker when they return (CALL_INTRINSIC_* do not)
_CALLS = {
    name for name in dis.opname if name.startswith("CALL") and not name.startswith("CALL_INTRINSIC")
}

# jumps back check it (3.11 also has conditional backward jumps)
_BACK = {
    name for name in dis.opname if "JUMP_BACKWARD" in name and not name.endswith("NO_INTERRUPT")
}


@dataclass
class Outcome:
    finished: bool
    points: list[str] = field(default_factory=list)  # where a finalizer could have run
    errors: list[BaseException] = field(default_factory=list)


def run_with_finalizers(
    scenario: Callable[[], Any],
    held: Callable[[], bool],
    reenter: Callable[[], Any] | None = None,
    unwedge: Callable[[], Any] | None = None,
    timeout: float = 10.0,
) -> Outcome:
    """Run ``scenario()`` on a new thread; at every eval-breaker point while ``held()``,
    note where and call ``reenter()`` (each point once per scenario run)."""
    out = Outcome(finished=False)
    after_call: set[Any] = set()  # frames whose last opcode was a call

    def point(where: str) -> None:
        if not held():
            return
        out.points.append(where)
        if reenter is not None:
            try:
                reenter()
            except BaseException as exc:  # noqa: BLE001 - reported to the test
                out.errors.append(exc)

    def local(frame: Any, event: str, arg: Any) -> Any:
        if frame in after_call:
            after_call.discard(frame)
            point(f"after a call in {frame.f_code.co_qualname}")
        if event == "opcode":
            op = dis.opname[frame.f_code.co_code[frame.f_lasti]]
            if op in _BACK:
                point(f"loop in {frame.f_code.co_qualname}")
            elif op in _CALLS:
                after_call.add(frame)
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace = local  # (3.12+ turns opcode events on only for a traced frame)
        frame.f_trace_opcodes = True
        if event == "call":
            point(f"start of {frame.f_code.co_qualname}")
        return local

    def body() -> None:
        sys.settrace(tracer)
        try:
            scenario()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            out.errors.append(exc)
        finally:
            sys.settrace(None)

    thread = threading.Thread(target=body, name="finalizer-points", daemon=True)
    thread.start()
    thread.join(timeout)
    out.finished = not thread.is_alive()
    if not out.finished and unwedge is not None:
        unwedge()
        thread.join(timeout)
    return out
