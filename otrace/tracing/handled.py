"""Will the caller handle this exception?  Decided from the caller's bytecode, not by running it.

An exceptions trace records an exception when it *leaves* the traced function.  Many
exceptions leave a function only to be caught at once by its caller -- ``KeyError`` from a
``__getitem__`` inside ``Mapping.get``, ``BlockingIOError`` from a non-blocking read,
``StopIteration`` from ``__next__`` -- and recording those costs a stack capture each and tells
nothing.  :func:`leaves` looks at the instruction the caller is executing, finds the
exception-table entry covering it (3.11+), and follows the ``except`` clauses at the handler:
a clause naming a specific class (a global or builtin name, ``module.Name``, or a tuple of
those) that the exception is an instance of means handled -- flow control.  A catch-all
(bare ``except:``, ``except Exception``, ``except BaseException``) is error handling (a
server turning any error into a 500), so that exception is recorded.  Anything it cannot
decide without running program code (a ``with`` block whose ``__exit__`` may swallow it, a
clause naming a local variable, ``finally``) counts as *not* handled, so the exception is
recorded.  ``StopIteration``, ``StopAsyncIteration`` and ``GeneratorExit`` are flow control,
never recorded by default.  The ``trace_handled`` parameter records them all.

Thread safety: pure functions plus a per-code cache filled under the GIL (any thread).
"""

from __future__ import annotations

import builtins
import dis
from types import CodeType, FrameType, ModuleType
from typing import Any

_FLOW = (StopIteration, StopAsyncIteration, GeneratorExit)
_CATCH_ALL = (Exception, BaseException)
# Types of constants that mark a handler as otrace's own (it records and re-raises).
RERAISING: set[type] = set()
_LOADS = {"LOAD_GLOBAL", "LOAD_NAME"}
_SKIP = {"CACHE", "NOP", "EXTENDED_ARG"}
_DEPTH = 12
# What the exception table says about an exception at one offset of one code object:
#   None                       -- no handler: it leaves the frame;
#   ("next", offset)           -- a cleanup (``with``, ``finally``, otrace's own handler) runs,
#                                 then re-raises; go on from ``offset``;
#   ("clauses", [(paths, reraise_at)], fallthrough)
#                              -- ``except`` clauses: class name paths (() for a bare except),
#                                 the offset of a re-raise in the body (or None); an exception
#                                 no clause takes goes on at ``fallthrough`` (None: leaves);
#   "unknown".
Verdict = Any
_cache: dict[tuple[CodeType, int], Verdict] = {}
_tables: dict[CodeType, list[tuple[int, int, int]]] = {}


def _table(code: CodeType) -> list[tuple[int, int, int]]:
    table = _tables.get(code)
    if table is None:
        try:
            entries = dis._parse_exception_table(code)  # type: ignore[attr-defined]
        except Exception:  # pragma: no cover - no table before 3.11
            entries = []
        table = [(e.start, e.end, e.target) for e in entries]
        if len(_tables) > 4096:
            _tables.clear()
        _tables[code] = table
    return table


def _listing(code: CodeType) -> tuple[dict[int, Any], list[int]]:
    # not cached: only the (small) verdicts are, per offset
    by_offset = {ins.offset: ins for ins in dis.get_instructions(code)}
    return by_offset, sorted(by_offset)


def _reraise_at(by_offset: dict[int, Any], offsets: list[int], k: int) -> int | None:
    """Offset of the re-raise ending the handler body that starts at ``offsets[k]``, if any."""
    for off in offsets[k : k + 400]:
        ins = by_offset[off]
        if ins.opname == "POP_EXCEPT":
            return None
        if ins.opname == "RERAISE" or (ins.opname == "RAISE_VARARGS" and ins.arg == 0):
            return off
        if ins.opname == "LOAD_CONST" and type(ins.argval) in RERAISING:
            return off  # otrace's own handler: records and re-raises
    return None


def _handler(code: CodeType, lasti: int) -> Verdict:
    """What the exception table of ``code`` does with an exception at ``lasti`` (see above)."""
    target = None
    for start, end, handler in _table(code):
        if start <= lasti < end:
            target = handler
            break
    if target is None:
        return None
    by_offset, offsets = _listing(code)
    if target not in by_offset:
        return "unknown"
    if by_offset[target].opname != "PUSH_EXC_INFO" or target == lasti:
        return ("next", target) if target != lasti else "unknown"
    clauses: list[tuple[tuple[tuple[str, ...], ...], int | None]] = []
    i = offsets.index(target) + 1
    while i < len(offsets):
        stack: list[Any] = []
        j = i
        while j < len(offsets):
            ins = by_offset[offsets[j]]
            name = ins.opname
            if name in _LOADS:
                stack.append((ins.argval,))
            elif name == "LOAD_ATTR" and stack and isinstance(stack[-1], tuple):
                stack[-1] = stack[-1] + (ins.argval,)
            elif name == "BUILD_TUPLE" and len(stack) >= (ins.arg or 0):
                n = ins.arg or 0
                items = stack[len(stack) - n :]
                del stack[len(stack) - n :]
                stack.append(("tuple", *items))
            elif name not in _SKIP:
                break
            j += 1
        if j >= len(offsets):
            return "unknown"
        ins = by_offset[offsets[j]]
        if ins.opname == "CHECK_EXC_MATCH" and len(stack) == 1:
            item = stack[0]
            paths = item[1:] if item and item[0] == "tuple" else (item,)
            k = j + 1
            while k < len(offsets) and by_offset[offsets[k]].opname in _SKIP:
                k += 1
            jump = by_offset[offsets[k]] if k < len(offsets) else None
            clauses.append((tuple(paths), _reraise_at(by_offset, offsets, k + 1)))
            if jump is None or "JUMP" not in jump.opname or jump.argval not in by_offset:
                return "unknown"
            i = offsets.index(jump.argval)
            continue
        if not stack and j == i and ins.opname == "POP_TOP" and clauses == []:
            # bare except:
            return ("clauses", [((), _reraise_at(by_offset, offsets, j + 1))], None)
        if clauses and not stack and j == i and ins.opname == "POP_TOP":
            clauses.append(((), _reraise_at(by_offset, offsets, j + 1)))  # trailing bare except
            return ("clauses", clauses, None)
        if clauses and not stack and j == i and ins.opname == "RERAISE":
            return ("clauses", clauses, offsets[j])  # no clause took it: re-raised here
        if not clauses:
            return ("next", target)  # finally / with: cleanup code, then a re-raise
        return "unknown"
    return "unknown"


def _verdict(code: CodeType, off: int) -> Verdict:
    key = (code, off)
    if key in _cache:
        return _cache[key]
    got = _handler(code, off)
    if len(_cache) > 8192:
        _cache.clear()
    _cache[key] = got
    return got


def _resolve(path: tuple[str, ...], frame: FrameType) -> Any:
    first, *rest = path
    g = frame.f_globals
    obj = g[first] if first in g else vars(builtins).get(first)
    for attr in rest:
        if not isinstance(obj, ModuleType):
            return None
        obj = vars(obj).get(attr)
    return obj


def leaves(exc: BaseException, caller: FrameType | None) -> bool:
    """False when a caller up the stack is certain to catch ``exc`` by its class.

    Walks from ``caller`` outwards (at most 12 frames), within each frame from the
    innermost handler outwards, past what lets it through (no handler, ``finally``/``with``
    cleanup, handlers that re-raise): the first ``except`` taking it decides -- a specific
    class means handled (False), a catch-all means error handling (True).  Undecidable: True.
    """
    if isinstance(exc, _FLOW):
        return False
    mro = type(exc).__mro__
    frame = caller
    for _ in range(_DEPTH):
        if frame is None:
            return True
        code, off = frame.f_code, frame.f_lasti
        for _step in range(16):
            info = _verdict(code, off)
            if info is None:
                break  # it leaves this frame
            if info == "unknown":
                return True
            if info[0] == "next":
                off = info[1]
                continue
            _, clauses, fallthrough = info
            taken = None
            for paths, reraise in clauses:
                if paths:
                    classes = [_resolve(p, frame) for p in paths]
                    hit = next((c for c in classes if isinstance(c, type) and c in mro), None)
                    if hit is None:
                        continue
                    taken = (hit in _CATCH_ALL, reraise)
                else:
                    taken = (True, reraise)
                break
            if taken is None:
                if fallthrough is None:
                    break
                off = fallthrough
                continue
            catch_all, reraise = taken
            if reraise is None:
                return catch_all
            off = reraise  # a cleanup that re-raises: on from its raise
        else:
            return True
        frame = frame.f_back
    return True
