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
# (code, lasti) -> the handler's clauses: list of name paths, () for a bare except; None: unknown
_cache: dict[tuple[CodeType, int], list[tuple[tuple[str, ...], ...]] | None] = {}
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


def _clauses(code: CodeType, lasti: int) -> list[tuple[tuple[str, ...], ...]] | None:
    """The ``except`` clauses protecting offset ``lasti`` of ``code`` (None: cannot tell)."""
    target = None
    for start, end, handler in _table(code):
        if start <= lasti < end:
            target = handler
            break
    if target is None:
        return None
    by_offset = {ins.offset: ins for ins in dis.get_instructions(code)}
    offsets = sorted(by_offset)
    index = offsets.index(target) if target in by_offset else -1
    if index < 0 or by_offset[target].opname != "PUSH_EXC_INFO":
        return None
    clauses: list[tuple[tuple[str, ...], ...]] = []
    i = index + 1
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
            elif name in ("CACHE", "NOP", "EXTENDED_ARG"):
                pass
            else:
                break
            j += 1
        if j >= len(offsets):
            return None
        ins = by_offset[offsets[j]]
        if ins.opname == "CHECK_EXC_MATCH" and len(stack) == 1:
            if _ours(by_offset, offsets, j):
                return clauses
            item = stack[0]
            paths = item[1:] if item and item[0] == "tuple" else (item,)
            clauses.append(tuple(paths))
            # the next clause starts where the failed match jumps to
            k = j + 1
            while k < len(offsets) and by_offset[offsets[k]].opname in ("CACHE", "NOP"):
                k += 1
            jump = by_offset[offsets[k]] if k < len(offsets) else None
            if jump is None or "JUMP" not in jump.opname or not isinstance(jump.argval, int):
                return clauses
            if jump.argval not in by_offset:
                return clauses
            i = offsets.index(jump.argval)
            continue
        if not stack and j == i and ins.opname in ("POP_TOP", "STORE_FAST", "STORE_NAME"):
            clauses.append(())  # bare except: (POP_TOP of the exception)
        return clauses
    return clauses


def _ours(by_offset: dict, offsets: list[int], j: int) -> bool:
    """Does the clause matched at ``offsets[j]`` belong to instrumented code (re-raises)?"""
    for k in range(j + 1, min(j + 8, len(offsets))):
        ins = by_offset[offsets[k]]
        if ins.opname == "LOAD_CONST" and type(ins.argval) in RERAISING:
            return True
    return False


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
    """False when ``caller`` is certain to catch ``exc`` right where it is (or it is flow control)."""
    if isinstance(exc, _FLOW):
        return False
    if caller is None:
        return True
    code = caller.f_code
    key = (code, caller.f_lasti)
    if key in _cache:
        clauses = _cache[key]
    else:
        clauses = _clauses(code, caller.f_lasti)
        if len(_cache) > 8192:
            _cache.clear()
        _cache[key] = clauses
    if not clauses:
        return True
    mro = type(exc).__mro__
    for paths in clauses:
        if not paths:
            return True  # bare except: error handling, not flow control
        for path in paths:
            cls = _resolve(path, caller)
            if isinstance(cls, type) and cls in mro:
                # ``except Exception`` is how servers turn errors into responses: record
                return cls in _CATCH_ALL
    return True
