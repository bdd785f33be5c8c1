"""The original otrace's module-level API (reference §13), adapted to this implementation.

Programs written for the original keep working::

    from otrace import OShell, traceassert
    import otrace
    otrace.OTrace.trace_entity(Cart)          # wrap a class for tracing
    otrace.OTrace.add_trace("Cart.add_item", argmatch={"name==": "apple"})
    return otrace.OTrace.tracereturn(result)

What differs, on purpose (docs/differences.rst):

* registering a trace and wrapping the function are one step here.  ``add_trace`` with a
  function or class traces it at once; with a name (``"Cart.add_item"``) it is kept until
  ``trace_entity``/``trace_method``/``trace_function`` wraps that function (or ``trace`` at
  the shell names it);
* ``add_trace(break_count=...)`` defaults to 0 (trace every match), as the shell's ``trace``;
* trace events reach a :class:`TraceCallback` as finished lines (``logmessage``), not as
  the original's per-field ``callback``/``returnback`` calls;
* ``hold_wrapper`` is accepted and ignored: holds are awaitables (``await traceassert(...)``).

Thread rules: every function may be called from any thread, like the functions it adapts.
"""

from __future__ import annotations

import inspect
import logging
import sys
import textwrap
from collections.abc import Callable
from typing import Any

from otrace import holds, log
from otrace.errors import OTraceError, OTraceException, TraceError
from otrace.runtime import default as _runtime
from otrace.tracing import api as _api
from otrace.tracing import dbkeys
from otrace.tracing import patching as _patching
from otrace.tracing.asserts import traceassert
from otrace.tracing.tags import get_tag, set_tag, tag, untag

__all__ = [
    "DefaultCallback",
    "OTrace",
    "OTraceException",
    "TraceCallback",
    "get_tag",
    "schedule_callback",
    "set_tag",
    "tag",
    "traceassert",
    "untag",
]


def schedule_callback(callback: Callable[[], Any]) -> None:
    """Run ``callback`` on the program's event loop (``eventloop_callback``), or right here
    when none is configured.  Any thread; does not wait."""
    door = holds.eventloop_callback()
    if door is None:
        callback()
    else:
        door(callback)


# -- output callbacks ------------------------------------------------------------------------


class TraceCallback:
    """Receives trace events as text.  Subclass it and give it to ``OTrace.setup``.

    Each event arrives as one line (``Cart.boom:ex-ZeroDivisionError:...``) at
    :meth:`logmessage`, from the thread that traced.  The default writes it to stderr.
    """

    def __init__(
        self,
        log_level: int = logging.ERROR,
        trace_len: int = 0,
        logger: logging.Logger | None = None,
        log_handler: Any = None,
    ) -> None:
        self.log_level = log_level
        self.trace_len = trace_len
        self.logger = logger

    def display_log(
        self, msg: str, trace_id: str = "", prefix: str = "", logtype: str = "trace"
    ) -> None:
        """Prefix ``msg`` with the trace id (or ``prefix:``), cut it to ``trace_len``."""
        if trace_id:
            msg = f"{trace_id} {msg}" if msg else trace_id
        elif prefix:
            msg = f"{prefix}: {msg}"
        if self.trace_len and len(msg) > self.trace_len:
            msg = msg[: self.trace_len] + "..."
        self.logmessage(None, msg, logtype=logtype)

    def logmessage(
        self,
        log_level: int | None,
        msg: str,
        exc_info: Any = None,
        logtype: str = "",
        prompt: str = "",
        plaintext: str = "",
    ) -> None:
        if logtype or log_level is None or log_level >= self.log_level:
            sys.stderr.write(msg + "\n" + prompt)

    def loglevel(self, level: int | None = None) -> int:
        if level is not None:
            self.log_level = level
        return self.log_level

    def tracelen(self, n: int | None = None) -> int:
        if n is not None:
            self.trace_len = n
        return self.trace_len


class DefaultCallback(TraceCallback):
    """The callback used when none is set up (writes to stderr)."""


def _announce_to(callback: TraceCallback) -> Callable[[str], None]:
    def sink(text: str) -> None:
        callback.logmessage(None, text, logtype="trace")

    sink.callback = callback  # type: ignore[attr-defined]
    return sink


# -- the engine's class API --------------------------------------------------------------------


def _condition_text(argmatch: dict[str, Any], trace_call: bool, trace_return: bool) -> str:
    parts = []
    for key, value in (argmatch or {}).items():
        if isinstance(value, str):
            value = repr(value)
        parts.append(f"{key}{value}" if key[-1:] in "=<>" else f"{key}=={value}")
    if not parts:
        if trace_call and trace_return:
            return "all"
        if trace_call:
            return "call"
        if trace_return:
            return "return"
    return ",".join(parts)


class OTrace:
    """The original's tracing engine, as class methods (never instantiated)."""

    callback_handler: TraceCallback | None = None
    _sink: Callable[[str], None] | None = None
    _pending: dict[str, dict[str, Any]] = {}

    def __init__(self) -> None:
        raise OTraceError("OTrace is used through its class methods; it has no instances")

    # -- configuration ----------------------------------------------------------------
    @classmethod
    def setup(
        cls,
        start_path: Any = None,
        callback_handler: TraceCallback | None = None,
        hold_wrapper: Any = None,
        eventloop_callback: Callable[[Callable[[], Any]], Any] | None = None,
    ) -> None:
        """Set the trace-event callback and the event-loop door (``hold_wrapper`` is
        accepted and ignored: holds are awaitables).  A :class:`DefaultCallback` restores
        otrace's own output (the console, else stderr)."""
        if callback_handler is not None:
            if cls._sink is not None:
                log.remove_sink(cls._sink)
                cls._sink = None
            cls.callback_handler = callback_handler
            if type(callback_handler) is not DefaultCallback:
                # a DefaultCallback is otrace's own output (console, else stderr): no sink
                cls._sink = _announce_to(callback_handler)
                log.add_sink(cls._sink)
        if eventloop_callback is not None:
            holds.set_eventloop_callback(eventloop_callback)

    # -- registering traces -------------------------------------------------------------
    @classmethod
    def add_trace(
        cls,
        method: Any = None,
        parent: Any = None,
        argmatch: dict[str, Any] | None = None,
        break_count: int = 0,
        trace_call: bool = False,
        trace_return: bool = False,
        break_action: str | None = None,
        match_tag: str = "",
        access_type: str = "",
    ) -> Any:
        """Trace ``method`` (function, class, ``"Class.method"``, ``"*"``); returns its name.

        With no ``method``: the sorted list of traced names.  A name whose function is not
        wrapped yet is kept until ``trace_entity`` (or a sibling) wraps it.  A name starting
        with ``/`` is a database key, as the db interface reports it (``access_type``: get,
        put, delete, modify or all).
        """
        if method is None:
            keys = {k.key for k in dbkeys.traced_keys()}
            return sorted({s.key for s in _api.traces()} | set(cls._pending) | keys)
        condition = _condition_text(argmatch or {}, trace_call, trace_return)
        if match_tag:
            tagged = f"tagged{match_tag}" if match_tag != "*" else "tagged"
            condition = f"{condition},{tagged}" if condition else tagged
        options: dict[str, Any] = {
            "condition": condition,
            "action": break_action or None,
            "count": break_count if break_count >= 0 else 0,
        }
        if isinstance(method, str) and method.startswith("/"):  # a database key
            spec = dbkeys.trace_key(
                method, access_type or condition, options["action"], options["count"]
            )
            return spec.key
        if isinstance(method, str) and method != "*":
            cls._pending[method] = options
            return method
        return _api.trace(method, parent, **options).key

    @classmethod
    def remove_trace(cls, method: Any) -> None:
        """Stop tracing ``method`` (a name or object); ``"all"`` stops everything."""
        if method == "all":
            cls.clear_trace()
            return
        if isinstance(method, str) and method.startswith("/"):
            dbkeys.untrace_key(method)
            return
        if isinstance(method, str):
            cls._pending.pop(method, None)
        try:
            _api.untrace(method)
        except TraceError:
            if not isinstance(method, str):
                raise

    @classmethod
    def clear_trace(cls) -> None:
        cls._pending.clear()
        _api.untrace_all()
        dbkeys.untrace_all()

    # -- wrapping ---------------------------------------------------------------------
    @classmethod
    def _wrap(cls, target: Any, parent: Any, attr: str | None, name: str, unwrap: bool) -> None:
        if unwrap:
            try:
                _api.untrace(name)
            except TraceError:
                pass
            return
        short = name.rpartition(".")[2]
        options = (
            cls._pending.get(name)
            or cls._pending.get(f".{short}")
            or cls._pending.get(f"{name.rpartition('.')[0]}.")
        )
        _api.trace(target, parent, attr, **(options or {}))

    @classmethod
    def trace_entity(
        cls,
        entity: Any,
        exclude: list[str] | None = None,
        include: list[str] | None = None,
        unwrap: bool = False,
    ) -> None:
        """Wrap a function, or every method of a class (``include``/``exclude`` pick which)."""
        if not inspect.isclass(entity):
            cls.trace_function(entity, unwrap=unwrap)
            return
        for attr, raw in list(vars(entity).items()):
            if attr in _api.NEVER_WRAPPED or attr in (exclude or ()):
                continue
            if include and attr not in include:
                continue
            func = getattr(raw, "__func__", raw)
            if inspect.isfunction(func):
                cls._wrap(getattr(entity, attr), entity, attr, f"{entity.__name__}.{attr}", unwrap)

    @classmethod
    def trace_method(cls, klass: type, method: Any, unwrap: bool = False) -> None:
        attr = method if isinstance(method, str) else method.__name__
        cls._wrap(getattr(klass, attr), klass, attr, f"{klass.__name__}.{attr}", unwrap)

    @classmethod
    def trace_modulefunction(cls, module: Any, function: Any, unwrap: bool = False) -> None:
        attr = function if isinstance(function, str) else function.__name__
        cls._wrap(getattr(module, attr), module, attr, attr, unwrap)

    @classmethod
    def trace_function(
        cls,
        function: Any,
        classname: str = "",
        modulename: str = "",
        methodtype: str = "",
        unwrap: bool = False,
    ) -> None:
        name = getattr(function, "__qualname__", getattr(function, "__name__", str(function)))
        cls._wrap(function, None, None, name, unwrap)

    # -- patching -----------------------------------------------------------------------
    @classmethod
    def monkey_patch(
        cls,
        new_func: Any,
        method: Any,
        parent: Any,
        methodtype: str = "",
        repatch: bool = False,
        source: Any = None,
    ) -> Any:
        """Replace ``parent.<method>`` with ``new_func`` (its source is compiled in the
        parent's module); returns the installed function, or None if it failed."""
        attr = method if isinstance(method, str) else method.__name__
        if source is None:
            text = textwrap.dedent(inspect.getsource(new_func))
        else:
            text = "".join(source) if not isinstance(source, str) else source
        try:
            return _patching.patch(parent, attr, text, repatch=repatch).function
        except OTraceError:
            return None

    @classmethod
    def monkey_unpatch(cls, method: Any) -> bool:
        name = method if isinstance(method, str) else method.__qualname__
        try:
            _patching.unpatch(name)
        except OTraceError:
            return False
        return True

    @classmethod
    def getsourcelines(cls, obj: Any) -> tuple[list[str], int]:
        """(lines, first line number); 0 means the lines are a patch's source."""
        patched = getattr(obj, "_otrace_patch_source", None)
        if patched:
            lines = patched if isinstance(patched, list) else patched.splitlines(True)
            return lines, 0
        return inspect.getsourcelines(obj)

    # -- tags, asserts, contexts ---------------------------------------------------------
    tag = staticmethod(tag)
    untag = staticmethod(untag)
    get_tag = staticmethod(get_tag)
    set_tag = staticmethod(set_tag)
    traceassert = staticmethod(traceassert)

    @staticmethod
    def tracereturn(value: Any) -> Any:
        """``return OTrace.tracereturn(result)``: with tracing active, keep ``str()`` of the
        caller's locals on its ``self`` as ``_trace_<function>_locals``; returns ``value``."""
        if _runtime().params.trace_active:
            frame = sys._getframe(1)
            try:
                owner = frame.f_locals.get("self")
                if owner is not None:
                    from otrace.contexts.safe import safe_str

                    text = safe_str(dict(frame.f_locals))
                    try:
                        setattr(owner, f"_trace_{frame.f_code.co_name}_locals", text)
                    except Exception:
                        pass
            finally:
                del frame
        return value

    @staticmethod
    def evaluate_in_context(
        expression: str,
        trace_id: str | None = None,
        globals_dict: dict[str, Any] | None = None,
        print_out: bool = False,
    ) -> Any:
        """Evaluate ``expression`` with a context's values as locals (the newest context
        when ``trace_id`` is None).  OTraceError if there is no such context."""
        store = _runtime().store
        ctx = store.get(trace_id) if trace_id else store.newest
        if ctx is None:
            raise OTraceError(f"No trace context {trace_id or '(none recorded)'}")
        result = eval(expression, dict(globals_dict or {}), dict(ctx))  # noqa: S307
        if print_out:
            log.announce(repr(result))
        return result
