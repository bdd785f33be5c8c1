"""Traced functions for the figure 2 benchmarks: modules with and without source, the thin
wrapper every added cost is compared with."""

from __future__ import annotations

import linecache
import sys
import types


def make_module(name: str, count: int = 1, fname: str = "add") -> types.ModuleType:
    """A module with ``fname(a, b=2)`` and ``f0..f{count-1}``.  Trace keys are bare names,
    so functions traced at the same time need distinct names."""
    mod = types.ModuleType(name)
    src = f"def {fname}(a, b=2):\n    return a + b\n"
    src += "".join(f"def f{i}(x):\n    return x\n" for i in range(count))
    filename = f"<{name}>"
    # its source, as a module imported from a file has it (in-place tracing reads it)
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    exec(compile(src, filename, "exec"), mod.__dict__)
    sys.modules[name] = mod
    return mod


def thin(f):
    def w(*a, **k):
        return f(*a, **k)

    return w


def sourceless_module(name: str, fname: str) -> types.ModuleType:
    """Like :func:`make_module` but without source for linecache: a function shipped as a
    ``.pyc`` only, or made by ``exec``.  otrace cannot instrument it in place; today it gets
    the wrapper, and it is what a sys.monitoring back end would be for."""
    mod = types.ModuleType(name)
    src = f"def {fname}(a, b=2):\n    return a + b\n"
    exec(compile(src, f"<nosource {name}>", "exec"), mod.__dict__)
    sys.modules[name] = mod
    return mod
