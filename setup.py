"""The optional C accelerators (everything else is in pyproject.toml).

Built when a compiler and Python's headers are there; without them (``optional=True``) the
install goes on and otrace runs its pure-Python code, with the same results.
``otrace._speedups`` and ``otrace._trace_ids`` use the public C API only; ``otrace._frames`` reads CPython's internal
frame layout (its headers come with Python's own), so it is built per interpreter release
and refuses to load in another one.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("otrace._speedups", ["otrace/_speedups.c"], optional=True),
        Extension("otrace._frames", ["otrace/_frames.c"], optional=True),
        Extension("otrace._trace_ids", ["otrace/_trace_ids.c"], optional=True),
    ]
)
