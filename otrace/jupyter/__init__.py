"""otrace in a Jupyter notebook: stored trace contexts, their frames and the object shell.

In a notebook (IPython kernel; ``pip install otrace[jupyter]``)::

    %load_ext otrace.jupyter
    %otrace open trace.db            # a file written with `set pickle_file`
    %otrace ls
    %otrace cd exceptions/Cart.boom/ex-ZeroDivisionError/*/:
    ctx = %otrace get ~~             # displayed as the traceback page draws it
    %%otrace frame 2                 # a cell run with frame 2's stored locals

or, without the magics, ``otrace.jupyter.load("trace.db")[trace_id]``.  Stored objects load
as data unless the file is opened with ``--trust`` (``trust=True``).  See docs/Notebook.rst.

otrace itself never imports IPython; only :mod:`otrace.jupyter.magics` does, when the
extension is loaded.
"""

from __future__ import annotations

from typing import Any

from otrace.jupyter.display import ContextView, ShellOutput
from otrace.jupyter.shell import NotebookShell, StoredContexts, load

__all__ = [
    "ContextView",
    "NotebookShell",
    "ShellOutput",
    "StoredContexts",
    "load",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext otrace.jupyter``: register the ``%otrace`` magics."""
    from otrace.jupyter.magics import OTraceMagics

    ipython.register_magics(OTraceMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext otrace.jupyter``: close the shell's file."""
    magics = ipython.magics_manager.registry.get("OTraceMagics")
    if magics is not None:
        magics.osh.close()
