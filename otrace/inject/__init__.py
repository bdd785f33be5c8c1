"""``otrace inject PID``: start otrace inside a running CPython that never imported it.

How (CPython 3.11 and later, through Debian's ``gdb``):

1. Checks that need no debugger: the process exists, is not this one, and ptrace may reach
   it (same user or root; ``kernel.yama.ptrace_scope``; no other tracer).
2. ``gdb -p PID`` (batch, no init files) runs a short gdb-Python script that reads the
   interpreter's ``Py_Version`` (no such symbol: not CPython 3.11+), maps one private page
   (``mmap``, no allocator lock involved), writes a one-line Python statement into it and
   calls ``Py_AddPendingCall(PyRun_SimpleString, page)``, then detaches.  Nothing of otrace
   runs while the program is stopped.
3. The interpreter runs pending calls on its **main thread**, between two bytecodes (its eval
   breaker) -- never in the middle of another thread's work, never inside a C call.  The
   statement imports otrace (from the target's own ``sys.path``, plus the directories the
   operator names with ``--path``) and calls :func:`otrace.bootstrap.start_injected`.  It
   never raises into the program: whatever happens is written as JSON to a status file that
   the injector waits for (bounded) and reports.

On Python 3.14+ (injector and target), ``sys.remote_exec`` replaces gdb for step 2.

The target keeps running in every case: every refusal happens before or instead of
scheduling, and the scheduled code reports failures instead of raising them.  If the main
thread runs no Python code for a while (blocked in a C call, an idle event loop), start-up
waits for it; the injector says so when its wait ends.

The parts: ``checks.py`` (step 1), ``payload.py`` (the statement the target runs),
``schedule.py`` (step 2: gdb, or ``sys.remote_exec``), ``injector.py`` (the whole injection,
waiting for the status file, and the ``otrace inject`` command).  Every step raises
:class:`InjectError`.

Thread safety: :func:`~otrace.inject.injector.inject` may be called from any thread; it keeps
no shared state.
"""

from __future__ import annotations

from otrace.errors import OTraceError


class InjectError(OTraceError):
    """``otrace inject`` refused or failed (one line; the target is left running)."""
