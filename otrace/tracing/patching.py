"""Live patching: run new source for a function or method of the running program, and undo it.

A patch is made **in place** when it can be: the function object that really runs (found
below any tracing wrapper or ``functools.wraps`` decorator, through ``_otrace_orig_function``
and ``__wrapped__``) gets the new ``__code__``, ``__defaults__``, ``__kwdefaults__``,
``__doc__`` and ``__annotations__``.  Every reference to that function -- the attribute, a
tracing wrapper around it, a stored callback, a ``from m import f`` alias -- then runs the
new code, and tracing carries on untouched.  Unpatching puts the saved originals back.

The attribute is **rebound** instead (a new function object set on the parent, wrapped in
``classmethod``/``staticmethod`` like the original) when the swap is impossible:

* the new code's free variables differ from the original's (a closure variable used or no
  longer used, ``super()`` added or removed);
* the method is inherited: ``Cart.inherited`` defined by ``Base`` is patched on ``Cart``, so
  ``Base`` and its other subclasses keep the old code;
* the attribute does not exist yet (added by the patch; unpatching deletes it);
* the original is not a Python function.

A rebound patch affects only the attribute, and a tracing wrapper stored there is replaced.

The new source is compiled in the globals of the function's own module; for a method, inside a
class body named like the class (so ``self.__private`` names mangle as in the original) and
with the original's closure cells (``super()`` works).  The patched function carries
``_otrace_unpatched_function`` (a function running the original code, so the patch can wrap
it), ``_otrace_patch_source`` (the source text) and ``_otrace_patch_parent``.

Threads: :func:`patch` and :func:`unpatch` may be called from any thread.  Compilation runs
in the caller's thread; the change itself runs through ``eventloop_callback`` (a thread-safe
"run this on the program's loop" function) when one is given, and the caller waits for it,
so a request on the loop never sees half a patch.

The work is split: :mod:`otrace.tracing.patch_compile` finds and compiles,
:mod:`otrace.tracing.patch_install` decides in place/rebound and makes the change; this
module owns the patch table and runs the change on the loop.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Callable, Iterator
from typing import Any

from otrace import _default, holds
from otrace.errors import PatchError
from otrace.holds import HoldTable
from otrace.tracing.patch_compile import chain, compile_patch, original, real_function
from otrace.tracing.patch_install import (
    PATCH_ATTRS,
    Patch,
    _install,
    _prepare,
    _qualname,
    _uninstall,
)

__all__ = [
    "PATCH_ATTRS",
    "EventloopCallback",
    "Patch",
    "PatchError",
    "PatchTable",
    "chain",
    "compile_patch",
    "original",
    "patch",
    "real_function",
    "run_on_loop",
    "unpatch",
    "unpatch_all",
]

EventloopCallback = Callable[[Callable[[], Any]], Any]


class PatchTable:
    """The live patches of one runtime (``rt.patches``), by name.

    ``lock`` guards ``patches`` and ``busy`` for a moment only; it is never held while
    waiting for the event loop (the loop thread may need it to install).  ``busy`` holds the
    names being patched or unpatched right now: one name is changed by one caller at a time,
    from its check to its install.  Every section under ``lock`` is call-free (plain reads,
    stores and deletes): the loop, or a program thread patching, waits for it while the
    shell holds it, and no finalizer can run there that would wait for one of theirs.
    """

    def __init__(self, holds: HoldTable | None = None) -> None:
        self.holds = holds
        self.lock = threading.RLock()
        self.patches: dict[str, Patch] = {}
        self.busy: dict[str, None] = {}  # (a dict: filed with a store, not a call)

    @contextlib.contextmanager
    def reserved(self, name: str) -> Iterator[None]:
        """Own ``name`` for one patch/unpatch; PatchError if another caller is changing it."""
        busy = self.busy
        with self.lock:  # call-free (see the class docstring)
            taken = name in busy
            if not taken:
                busy[name] = None
        if taken:
            raise PatchError(f"{name} is being patched or unpatched by another session; try again")
        try:
            yield
        finally:
            with self.lock:
                del busy[name]

    def get(self, name: str) -> Patch | None:
        return self.patches.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.patches

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.patches))


def _table(table: PatchTable | None) -> PatchTable:
    return table if table is not None else _default.get().patches


def run_on_loop(
    func: Callable[[], Any],
    eventloop_callback: EventloopCallback | None,
    timeout: float = 10.0,
    table: PatchTable | None = None,
) -> Any:
    """Make the change on the program's loop (``eventloop_callback``, else the process-wide
    door of :mod:`otrace.holds`; directly without either) and wait for it.

    PatchError if the loop does not start it within ``timeout`` seconds (nothing changed), or
    started it but did not finish within another ``timeout`` (then it may still complete).
    The caller holds no lock while it waits.
    """
    try:
        door = _table(table).holds
        if door is None:
            return holds.call_on_loop(func, timeout, eventloop_callback)
        return door.call_on_loop(func, timeout, eventloop_callback)
    except holds.LoopBusy:
        raise PatchError(
            f"The event loop started the change but did not finish it within {timeout:g}s; "
            "see ls /osh/patches once it has"
        ) from None
    except TimeoutError:
        raise PatchError(
            f"The event loop did not run the change within {timeout:g}s; nothing changed"
        ) from None


def patch(
    parent: Any,
    attr: str,
    source: str,
    *,
    name: str | None = None,
    repatch: bool = False,
    eventloop_callback: EventloopCallback | None = None,
    timeout: float = 10.0,
    table: PatchTable | None = None,
) -> Patch:
    """Patch ``parent.attr`` (module, class or globals dict) with the function ``source`` defines.

    ``name`` is the patch's name in /osh/patches (default ``Class.attr`` or ``attr``).  An
    already patched name needs ``repatch=True``; the original code stays the one from before
    the first patch.  PatchError (nothing changed) if the source does not compile, does not
    define the function, or raises.  Any thread.
    """
    table = _table(table)
    if name is None:
        name = _qualname(parent, attr) if inspect.isclass(parent) else attr
    with table.reserved(name):  # check, prepare and install as one step for this name
        old = table.patches.get(name)  # (one read: no lock)
        if old is not None and not repatch:
            raise PatchError(
                f"{name} is already patched; use 'edit -f' (repatch) to patch it again"
            )
        if old is None:
            p = _prepare(parent, attr, source, name)
            run_on_loop(lambda: _install(p, table), eventloop_callback, timeout, table)
            return p

        def swap() -> Patch:  # one step on the loop: no request sees the unpatched code
            _uninstall(old, table)
            try:
                new = _prepare(parent, attr, source, name)
            except BaseException:
                _install(old, table)
                raise
            _install(new, table)
            return new

        return run_on_loop(swap, eventloop_callback, timeout, table)


def unpatch(
    name: str,
    *,
    eventloop_callback: EventloopCallback | None = None,
    timeout: float = 10.0,
    table: PatchTable | None = None,
) -> Patch:
    """Undo the patch called ``name``: the original code (or no attribute) again.  Any thread."""
    table = _table(table)
    with table.reserved(name):
        p = table.patches.get(name)  # (one read: no lock)
        if p is None:
            raise PatchError(f"Unpatching failed for {name}: not patched")
        run_on_loop(lambda: _uninstall(p, table), eventloop_callback, timeout, table)
    return p


def unpatch_all(
    *, eventloop_callback: EventloopCallback | None = None, table: PatchTable | None = None
) -> list[str]:
    """Undo every patch; the names undone.  Any thread."""
    table = _table(table)
    names = list(table.patches)
    for n in reversed(names):
        unpatch(n, eventloop_callback=eventloop_callback, table=table)
    return names
