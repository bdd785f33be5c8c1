"""The optional C accelerator, ``otrace._speedups`` (everything else is in pyproject.toml).

Built when a compiler and Python's headers are there; without them (``optional=True``) the
install goes on and otrace runs its pure-Python code, with the same results.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("otrace._speedups", ["otrace/_speedups.c"], optional=True)])
