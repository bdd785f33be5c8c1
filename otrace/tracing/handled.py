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
# What a frame does with an exception at one instruction: None -- it propagates (no handler,
# a ``with``/``finally`` cleanup, or otrace's own re-raising handler); "unknown"; or the
# ``except`` clauses as (class name paths -- () for a bare except --, body re-raises).
Clauses = list[tuple[tuple[tuple[str, ...], ...], bool]]
_cache: dict[tuple[CodeType, int], Clauses | str | None] = {}
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
    # not cached: only the (small) verdicts are, per instruction
    by_offset = {ins.offset: ins for ins in dis.get_instructions(code)}
    return by_offset, sorted(by_offset)


def _reraises(by_offset: dict[int, Any], offsets: list[int], k: int) -> bool:
    """Does the handler body starting at ``offsets[k]`` re-raise before it ends?"""
    for off in offsets[k : k + 400]:
        ins = by_offset[off]
        if ins.opname == "POP_EXCEPT":
            return False
        if ins.opname == "RERAISE" or (ins.opname == "RAISE_VARARGS" and ins.arg == 0):
            return True
        if ins.opname == "LOAD_CONST" and type(ins.argval) in RERAISING:
            return True  # otrace's own handler: records and re-raises
    return False


def _handler(code: CodeType, lasti: int) -> Clauses | str | None:
    """What ``code`` does with an exception raised at offset ``lasti`` (see ``Clauses``)."""
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
    if by_offset[target].opname != "PUSH_EXC_INFO":
        return None  # a cleanup block that re-raises
    clauses: Clauses = []
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
            clauses.append((tuple(paths), _reraises(by_offset, offsets, k + 1)))
            if jump is None or "JUMP" not in jump.opname or jump.argval not in by_offset:
                return clauses
            i = offsets.index(jump.argval)
            continue
        if not stack and j == i and ins.opname == "POP_TOP":
            clauses.append(((), _reraises(by_offset, offsets, j + 1)))  # bare except:
            return clauses
        if not clauses and not stack:
            return None  # finally / with: runs cleanup code, then re-raises
        return clauses
    return clauses


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

    Walks from ``caller`` outwards (at most 12 frames) past frames that let it through
    (no handler, ``finally``/``with`` cleanup, handlers that re-raise): the first ``except``
    naming a class it is an instance of decides -- a specific class means handled (False),
    a catch-all means error handling (True).  Anything undecidable: True.
    """
    if isinstance(exc, _FLOW):
        return False
    mro = type(exc).__mro__
    frame = caller
    for _ in range(_DEPTH):
        if frame is None:
            return True
        key = (frame.f_code, frame.f_lasti)
        if key in _cache:
            info = _cache[key]
        else:
            info = _handler(frame.f_code, frame.f_lasti)
            if len(_cache) > 8192:
                _cache.clear()
            _cache[key] = info
        if info == "unknown":
            return True
        if isinstance(info, list):
            for paths, reraises in info:
                if paths:
                    classes = [_resolve(p, frame) for p in paths]
                    hit = next((c for c in classes if isinstance(c, type) and c in mro), None)
                    if hit is None:
                        continue
                    catch_all = hit in _CATCH_ALL
                else:
                    catch_all = True
                if reraises:
                    break  # cleanup, then on up the stack
                return catch_all
        frame = frame.f_back
    return True
