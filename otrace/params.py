"""The ``set`` parameters: one table of name, type, default and help.

Each runtime owns one :class:`Params` (``rt.params``); wrappers read them on every call, so
reading is a plain attribute access (``params.trace_active``).  Writing goes through
:meth:`Params.set_text` (text typed at the shell) or :meth:`Params.set` (a Python value);
both validate and then tell listeners (and emit :class:`~otrace.events.ParamChanged`), which is how ``pickle_file`` opens its database or
``log_level`` reaches the ``otrace`` logger.

Thread safety: reads may happen from any thread.  Writes are made by the shell thread (or by
the program before the shell starts); listeners run in the writing thread.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from otrace.errors import ParamError
from otrace.events import EventBus, ParamChanged

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", "", "none"}


@dataclass(frozen=True)
class Param:
    """One parameter: its type decides how text typed at ``set`` converts."""

    name: str
    type: type
    default: Any
    help: str
    minimum: float | None = None
    nullable: bool = False

    def convert(self, text: str) -> Any:
        """Turn the text typed after ``set NAME`` into a value, or raise ParamError."""
        raw = text.strip()
        if self.nullable and raw == "None":
            return None
        if self.type is bool:
            low = raw.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ParamError(f"{self.name}: expected true or false, not {raw!r}")
        if self.type is str:
            if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
                raw = raw[1:-1]
            return raw
        try:
            value = self.type(raw)
        except ValueError:
            kind = "an integer" if self.type is int else "a number"
            raise ParamError(f"{self.name}: expected {kind}, not {raw!r}") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        """Check a Python value's type and range; return it (ints widen to float)."""
        if value is None and self.nullable:
            return None
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise ParamError(
                f"{self.name}: expected {self.type.__name__}, not {type(value).__name__}"
            )
        number = cast(float, value)  # int or float here (checked above)
        if self.type is float and not math.isfinite(number):
            raise ParamError(f"{self.name}: must be a finite number")
        if self.type is int and abs(number) > sys.maxsize:
            # beyond a C index: islice/range would raise deep inside a later command
            raise ParamError(f"{self.name}: must be at most {sys.maxsize}")
        if self.minimum is not None and number < self.minimum:
            raise ParamError(f"{self.name}: must be at least {self.minimum:g}")
        return value


TABLE: tuple[Param, ...] = (
    Param("allow_xml", bool, True, "Allow HTML markup in output when a front end can render it"),
    Param(
        "append_traceback",
        bool,
        False,
        "Add the trace id and innermost traceback to messages of exceptions leaving traced functions",
    ),
    Param(
        "assert_context",
        int,
        0,
        "Source lines captured per frame by traceassert; above 0 outer frames' locals are kept too",
        minimum=0,
    ),
    Param(
        "auto_lock",
        int,
        0,
        "Lock the console after this many idle seconds (0: never; needs a password)",
        minimum=0,
    ),
    Param(
        "await_timeout",
        float,
        10.0,
        "Seconds an await typed at the prompt may run on the event loop before it is cancelled",
        minimum=0.1,
    ),
    Param(
        "deep_copy",
        bool,
        False,
        "Deep-copy captured arguments and locals instead of a shallow copy",
    ),
    Param("editor", str, "", "Editor for edit/view (empty: $VISUAL, then $EDITOR, then vi)"),
    Param(
        "exec_lock",
        bool,
        False,
        "Pause trace recording on other threads while typed code runs (at most 50 ms each)",
    ),
    Param(
        "log_format", str, "", "Format of trace log lines (reserved; the default format is fixed)"
    ),
    Param(
        "log_level", int, 30, "Level of the 'otrace' logger (10 debug .. 50 critical)", minimum=0
    ),
    Param(
        "log_remote", str, "", "host[:port] to send otrace log records to (port defaults to 9020)"
    ),
    Param(
        "log_truncate",
        int,
        0,
        "Truncate trace log lines to this many characters (0: never)",
        minimum=0,
    ),
    Param(
        "ls_limit",
        int,
        1000,
        "Most entries ls shows from one directory before it says how many it left out",
        minimum=1,
    ),
    Param(
        "max_recent",
        int,
        10,
        "Contexts kept in /osh/recent per context type (waiting breaks and holds are exempt)",
        minimum=1,
    ),
    Param("osh_bin", str, "", "Directory put in front of PATH for unix commands run outside /osh"),
    Param(
        "password", str, "", "Salted password hash for lock (make one with otrace.encrypt_password)"
    ),
    Param("pickle_file", str, "", "SQLite file that every new trace context is also written to"),
    Param("pretty_print", bool, False, "pr formats values with pprint"),
    Param("repeat_interval", float, 0.2, "Seconds between runs of repeat (0: run once)", minimum=0),
    Param(
        "safe_mode",
        bool,
        True,
        "Refuse calls, assignments, exec, edit and rm (turning it off needs allow_unsafe)",
    ),
    Param(
        "stall_ms",
        int,
        0,
        "Record a context in /osh/recent/stalls when the event loop does not turn for this many ms (0: off)",
        minimum=0,
    ),
    Param("save_tags", bool, False, "Also save every new tag context in /osh/saved"),
    Param("shell_timeout", float, 10.0, "Seconds a unix command outside /osh may run", minimum=0.1),
    Param(
        "trace_active", bool, False, "Master switch for traces and traceassert (trace turns it on)"
    ),
    Param("trace_related", bool, False, "Record calls whose arguments carry a tag"),
    Param(
        "trace_handled",
        bool,
        False,
        "Exception traces also record exceptions the caller catches at once (and StopIteration)",
    ),
    Param("unpickle_file", str, "", "Pickle database to open under /osh/pickled"),
    Param(
        "web_timeout", float, 5.0, "Seconds to wait for a browser's answer in /osh/web", minimum=0.1
    ),
)

Listener = Callable[[str, Any, Any], None]


class Params:
    """The live parameter values, readable as typed attributes (``params.max_recent``).

    The annotations below are the table's names and types (a test checks they agree); the
    values are set from :data:`TABLE` and change only through :meth:`set`/:meth:`set_text`.
    """

    allow_xml: bool
    append_traceback: bool
    assert_context: int
    auto_lock: int
    await_timeout: float
    deep_copy: bool
    editor: str
    exec_lock: bool
    log_format: str
    log_level: int
    log_remote: str
    log_truncate: int
    ls_limit: int
    max_recent: int
    osh_bin: str
    password: str
    pickle_file: str
    pretty_print: bool
    repeat_interval: float
    safe_mode: bool
    save_tags: bool
    shell_timeout: float
    stall_ms: int
    trace_active: bool
    trace_related: bool
    trace_handled: bool
    unpickle_file: str
    web_timeout: float

    def __init__(self, table: tuple[Param, ...] = TABLE, events: EventBus | None = None) -> None:
        self._events = events
        self._table = {p.name: p for p in table}
        self._listeners: list[Listener] = []
        self._guards: list[Callable[[str, Any], None]] = []
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Restore every default; listeners hear of the values that change."""
        changed = []
        for p in self._table.values():
            old = self.__dict__.get(p.name, p.default)
            object.__setattr__(self, p.name, p.default)
            if old != p.default:
                changed.append((p.name, old, p.default))
        for name, old, new in changed:
            for listener in list(self.__dict__.get("_listeners", ())):
                listener(name, old, new)
            events = self.__dict__.get("_events")
            if events is not None:
                events.emit(ParamChanged(name, old, new))

    def names(self) -> list[str]:
        return sorted(self._table)

    def spec(self, name: str) -> Param:
        try:
            return self._table[name]
        except KeyError:
            raise ParamError(f"Invalid parameter: {name} (type 'set' to list them)") from None

    def get(self, name: str) -> Any:
        self.spec(name)
        return getattr(self, name)

    def set(self, name: str, value: Any) -> Any:
        """Set a parameter from a Python value; returns the stored value."""
        return self._store(self.spec(name), self.spec(name).check(value))

    def set_text(self, name: str, text: str) -> Any:
        """Set a parameter from text typed at the shell; returns the stored value."""
        p = self.spec(name)
        return self._store(p, p.convert(text))

    def add_guard(self, guard: Callable[[str, Any], None]) -> None:
        """Add a check run before a value is stored; it raises ParamError to refuse."""
        self._guards.append(guard)

    def remove_guard(self, guard: Callable[[str, Any], None]) -> None:
        if guard in self._guards:
            self._guards.remove(guard)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(name, old, new)`` after every change."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _store(self, p: Param, value: Any) -> Any:
        for guard in list(self._guards):
            guard(p.name, value)
        name, values = p.name, self.__dict__
        # (no call under the lock: a signal handler -- or, on 3.12+, a collection's
        # finalizer -- run there might set a parameter on this thread)
        with self._lock:
            old = values[name]
            values[name] = value
        for listener in list(self._listeners):
            listener(p.name, old, value)
        if self._events is not None and old != value:
            self._events.emit(ParamChanged(p.name, old, value))
        return value

    def render(self, name: str) -> str:
        """``name = value`` as ``set`` shows it (the password hash is not shown)."""
        value = getattr(self, name)
        if name == "password" and value:
            value = "(set)"
        return f"{name} = {value}"

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self.set(name, value)
