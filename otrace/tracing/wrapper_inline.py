"""A condition's tests inlined into a wrapper's code (the wrappers are in wrappers.py).

The sync wrapper's code is swapped for one generated per condition shape, with the argument
tests (or, for a return-only condition, the return value's) written out inline; the
generator and coroutine wrappers keep their code and get a generated test of the return
value.  The engine asks for this through ``site.retune`` (:func:`retuner`,
:func:`value_retuner`), under the registry lock, before it publishes the new state.
Generated code keeps the template's names, file and globals (the wrapper's, in wrappers.py)
and is hidden from captured stacks like the templates.

Thread rules: retuning runs under the registry lock (any thread); the cache of generated
code is process-wide, under its own lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import CodeType
from typing import Any

from otrace.contexts.frames import hide_code
from otrace.log import get_logger
from otrace.tracing.engine import Site, filter_source, return_filter_source

log = get_logger("tracing")


# The general path both templates end with (a condition not of the inlined shape): as
# wrappers._make_sync, which is a plain function rather than source.
_GENERAL_PATH = """\
        call = on_call(site, spec, args, kwargs)
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            on_exception(site, spec, exc)
            raise
        if call is not None:
            on_return(call, result)
        return result

    return wrapper
"""

# The same wrapper with a condition's argument tests inlined (see retuner).  ``c`` is the
# state's constants; its first item is the shape id the code was generated for, so code and
# state that do not belong together (a registry change racing a call) use ``quick`` instead.
# The engine publishes constants only while ``trace_related`` is off, so the inlined path
# need not read that parameter.
_INLINE_SYNC = (
    """
def _make_sync(site, func):
    params = site.tracer.params

    def wrapper(*args, **kwargs):
        state = site.state
        if state is None:  # not traced, or trace_active off
            return func(*args, **kwargs)
        spec, quick, c = state
        if c is not None and c[0] == {shape_id}:
            hit = True
{tests}
            if not hit:
                try:
                    return func(*args, **kwargs)
                except Exception as exc:
                    on_exception(site, spec, exc)
                    raise
        elif (quick is None or not quick(args, kwargs)) and not params.trace_related:
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                on_exception(site, spec, exc)
                raise
"""
    + _GENERAL_PATH
)

# The same for a condition on the return value only (``return==99``): nothing is decided
# before the call, so the wrapper calls, tests the value it holds, and only on a possible
# match makes the ``Call`` (its args/kwargs are the tuples it was called with).
_RETURN_SYNC = (
    """
def _make_sync(site, func):
    params = site.tracer.params

    def wrapper(*args, **kwargs):
        state = site.state
        if state is None:  # not traced, or trace_active off
            return func(*args, **kwargs)
        spec, quick, c = state
        if c is not None and c[0] == {shape_id}:
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                on_exception(site, spec, exc)
                raise
            hit = True
{tests}
            if hit:
                on_late_return(site, spec, args, kwargs, result)
            return result
        if (quick is None or not quick(args, kwargs)) and not params.trace_related:
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                on_exception(site, spec, exc)
                raise
"""
    + _GENERAL_PATH
)

# A pure cache of generated wrapper code per condition shape (same for every runtime).
_SHAPES: dict[tuple, CodeType] = {}
_SHAPE_IDS: dict[tuple, int] = {}
# Re-entrant: compiling allocates a lot, so a collection may run a program's finalizer in
# here, which may call trace() and compile another shape.  Harmless: a shape's id is fixed
# before its code is compiled, and two compilations of one shape make equivalent code.
_shapes_lock = threading.RLock()


def _inline_code(shape: tuple, template: CodeType) -> tuple[int, CodeType]:
    """The sync wrapper's code (``template``) with ``shape``'s tests inlined (cached per
    shape; every sync wrapper has the same code)."""
    with _shapes_lock:
        code = _SHAPES.get(shape)
        if code is None:
            shape_id = _SHAPE_IDS.setdefault(shape, len(_SHAPE_IDS) + 1)
            if shape[0] == "return":
                source = _RETURN_SYNC.format(
                    shape_id=shape_id, tests="\n".join(return_filter_source(shape, " " * 12))
                )
            else:
                source = _INLINE_SYNC.format(
                    shape_id=shape_id, tests="\n".join(filter_source(shape, " " * 12))
                )
            env: dict[str, Any] = {}
            exec(compile(source, __file__, "exec"), env)  # noqa: S102 - validated names/ops
            inner = inner_codes(env["_make_sync"])[0]
            code = inner.replace(
                co_name=template.co_name,
                co_qualname=template.co_qualname,
                co_filename=template.co_filename,
            )
            if code.co_freevars != template.co_freevars:
                raise RuntimeError("inline wrapper does not fit")  # pragma: no cover
            hide_code(code)
            _SHAPES[shape] = code
        return _SHAPE_IDS[shape], code


def retuner(site: Site, wrapper: Callable) -> Callable[[tuple | None], tuple | None]:
    """``retune(plan)``: swap the sync wrapper's code to inline ``plan``'s tests.

    Called by :meth:`Site.refresh` under the registry lock before the new state is
    published.  Returns the constants the state must carry (shape id first), or None
    (generic code).  A call running the old code keeps running it; the shape check in the
    inlined code sends any mismatched pair of code and state to the generic ``quick`` path.
    """
    generic = wrapper.__code__

    def retune(plan: tuple | None) -> tuple | None:
        if plan is None:
            wrapper.__code__ = generic
            return None
        shape, values = plan
        try:
            shape_id, code = _inline_code(shape, generic)
        except Exception:  # pragma: no cover - keep the generic wrapper
            log.exception("inlining the condition for %s failed", site.name)
            wrapper.__code__ = generic
            return None
        wrapper.__code__ = code
        return (shape_id, *values)

    return retune


def value_retuner(plan: tuple | None) -> tuple | None:
    """``retune`` of the generator and coroutine wrappers: for a return-only condition the
    constants ``(0, value test)`` (they keep their code; 0 is no sync shape id)."""
    if plan is None or plan[0][0] != "return":
        return None
    shape, values = plan
    lines = ["def test(result):", "    hit = True", *return_filter_source(shape, "    ")]
    env: dict[str, Any] = {"c": (None, *values)}
    exec("\n".join([*lines, "    return hit"]), env)  # noqa: S102 - validated ops
    return (0, env["test"])


def inner_codes(factory: Callable) -> list[CodeType]:
    return [c for c in factory.__code__.co_consts if isinstance(c, CodeType)]
