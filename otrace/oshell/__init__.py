"""OShell: the object shell a program embeds, and ``set_trace``.

::

    shell = otrace.OShell(globals_dict=globals(), locals_dict=locals(), init_file="app.trc",
                          allow_unsafe=True, new_thread=True)
    shell.loop()          # returns at once with new_thread=True
    ...                   # the program (e.g. IOLoop.current().start())
    shell.shutdown()

The shell runs an otrace service (:mod:`otrace.service`): the program's own terminal is one
console of it, and with ``listen`` (or ``OTRACE_LISTEN=1``) more consoles attach over a UNIX
socket (``otrace attach PID``).  ``quit``, Ctrl-D and the end of standard input detach a
console; the program runs on.  ``shutdown`` (or :meth:`OShell.shutdown`) stops it.

Thread safety: construct and ``loop()`` from the program's main thread; ``execute`` may be
called from any one thread at a time (it runs in the caller's thread); ``shutdown`` from any
thread, any number of times.

The class is in ``shell.py``, ``set_trace`` (its small entry point) in ``entry.py``, the
requests of ``run`` under ``loop(wait_to_run=True)`` in ``runs.py``.
"""

from otrace.oshell.entry import set_trace
from otrace.oshell.shell import OShell

__all__ = ["OShell", "set_trace"]
