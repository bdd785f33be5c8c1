"""``otrace inject``: what runs in the target -- one statement, run by ``PyRun_SimpleString``
on its main thread, that imports otrace, starts it and writes a status file.

Any thread; no shared state.
"""

from __future__ import annotations

import base64
import json
from typing import Any

_PAYLOAD = """
import json as _json, os as _os, sys as _sys
def _otrace_injected(status, paths, options):
    def write(result):
        tmp = status + ".tmp"
        with open(tmp, "w") as f:
            _json.dump(result, f)
        _os.replace(tmp, status)
    try:
        for p in reversed(paths):
            if p not in _sys.path:
                _sys.path.insert(0, p)
        try:
            import otrace
        except BaseException as exc:
            write({"ok": False, "stage": "import", "error": f"{type(exc).__name__}: {exc}",
                   "python": _sys.version.split()[0], "executable": _sys.executable})
            return
        try:
            from otrace.bootstrap import start_injected
        except BaseException as exc:
            write({"ok": False, "stage": "bootstrap", "error": f"{type(exc).__name__}: {exc}",
                   "otrace": getattr(otrace, "__version__", "?"),
                   "otrace_path": _os.path.dirname(otrace.__file__ or "")})
            return
        write({"ok": True, **start_injected(**options)})
    except BaseException as exc:
        try:
            write({"ok": False, "stage": "start", "error": f"{type(exc).__name__}: {exc}"})
        except BaseException:
            pass
_otrace_injected(STATUS, PATHS, OPTIONS)
"""


def injected_statement(status: str, paths: list[str], options: dict[str, Any]) -> bytes:
    """The one line ``PyRun_SimpleString`` runs in ``__main__``: it defines no name there
    (the work happens in a namespace of its own) and cannot raise."""
    code = (
        _PAYLOAD.replace("STATUS", json.dumps(status))
        .replace("PATHS", json.dumps(paths))
        .replace("OPTIONS", json.dumps(options))
    )
    b64 = base64.b64encode(code.encode()).decode()
    line = (
        "exec(__import__('base64').b64decode('" + b64 + "').decode(),"
        " {'__name__': '__otrace_inject__', '__builtins__': __import__('builtins')})"
    )
    return line.encode()
