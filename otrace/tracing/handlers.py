"""What a traced call does at call, return and exception time (on the traced thread).

Per-call state lives in a :class:`Call` created by the call itself (threads and recursion
never share it).  A matching call becomes a context through the runtime's recorder
(``site.tracer.recorder``), so these handlers never touch the store or the console directly.
They run on the traced thread and never raise into the program (except that breaks block, by
design).
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

from otrace import holds
from otrace.contexts import call_stack, capture, frames
from otrace.contexts.lazytext import lazy_text
from otrace.contexts.record import TraceContext
from otrace.contexts.safe import BY_CONTENT_IDS, brief
from otrace.contexts.speedups import args_text as _c_args_text
from otrace.contexts.speedups import bind as _c_bind
from otrace.log import get_logger
from otrace.tracing import annotate, debugger
from otrace.tracing.conditions import ConditionError, Predicate, get_tag
from otrace.tracing.engine import _EMPTY, Site, TraceSpec

log = get_logger("tracing")


# -- per call ------------------------------------------------------------------------------


class Call:
    """The state of one traced invocation (private to it)."""

    __slots__ = (
        "site",
        "spec",
        "args",
        "kwargs",
        "frame",
        "result",
        "returned",
        "ctx",
        "hold",
        "_bound",
    )

    def __init__(
        self, site: Site, spec: TraceSpec, args: tuple, kwargs: dict, frame: FrameType
    ) -> None:
        self.site = site
        self.spec = spec
        self.args = args
        self.kwargs = kwargs
        self.frame = frame
        self.result: Any = None
        self.returned = False
        self.ctx: TraceContext | None = None
        self.hold: holds.Hold | None = None
        self._bound: dict[str, Any] | None = None

    def arguments(self) -> dict[str, Any]:
        """Bound arguments by name, defaults applied (``*args``/``**kwargs`` under their names)."""
        bound = self._bound
        if bound is None:
            site = self.site
            plan = site.plan if site.plan is not None else _site_plan(site)
            if plan:  # (one per signature; empty: no signature)
                bound = (
                    _c_bind(plan[0], self.args, self.kwargs, _EMPTY)
                    if _c_bind is not None
                    else _quick_bind(plan[0], self.args, self.kwargs)
                )
            if bound is None:  # anything unusual: the real thing (and its errors)
                sig = site.signature
                try:
                    if sig is None:
                        raise TypeError("no signature")
                    full = sig.bind(*self.args, **self.kwargs)
                    full.apply_defaults()
                    bound = dict(full.arguments)
                except TypeError:
                    bound = {"args": self.args, "kwargs": dict(self.kwargs)}
            self._bound = bound
        return bound

    def flat_arguments(self) -> list[tuple[str, Any]]:
        """(name, value) pairs with ``*args`` items and ``**kwargs`` entries spread out."""
        site = self.site
        out: list[tuple[str, Any]] = []
        for name, value in self.arguments().items():
            if name == site.varargs and type(value) is tuple:
                out.extend((f"{name}[{i}]", v) for i, v in enumerate(value))
            elif name == site.varkw and type(value) is dict:
                out.extend(value.items())
            else:
                out.append((name, value))
        return out

    def value_of(self, name: str) -> Any:
        if name == "return":
            if not self.returned:
                raise ConditionError("return value is not known at call time")
            return self.result
        site = self.site
        entry = site.params.get(name)
        if entry is not None:
            index, keyword, default = entry
            if index is not None and index < len(self.args):
                return self.args[index]
            if keyword is not None and keyword in self.kwargs:
                return self.kwargs[keyword]
            if default is not _EMPTY:
                return default
            raise ConditionError(f"argument {name!r} was not passed")
        if site.varkw is not None and name in self.kwargs:
            return self.kwargs[name]
        raise ConditionError(f"no argument {name!r}")

    def self_obj(self) -> Any:
        index = self.site.self_index
        if index is not None and len(self.args) > index:
            return self.args[index]
        return None


# Signature.bind is general and slow; a recorded call binds through a plan made once per
# signature and kept on the site (``site.plan``, dropped when ``edit`` changes the code):
# ``((name, kind, default) per parameter,)``, or ``()`` without a signature.
_POS, _POS_KW, _VAR, _KW, _VARKW = range(5)


def _site_plan(site: Site) -> tuple[tuple[tuple[str, int, Any], ...], ...]:
    sig = site.signature
    if sig is None:
        site.plan = ()
    else:  # (a one-item tuple: true even for a function without parameters)
        site.plan = (tuple((p.name, int(p.kind), p.default) for p in sig.parameters.values()),)
    return site.plan


def _quick_bind(
    plan: tuple[tuple[str, int, Any], ...], args: tuple, kwargs: dict
) -> dict[str, Any] | None:
    """``sig.bind(*args, **kwargs)`` with defaults applied, as a dict, from the signature's
    plan; None when the call needs the general binder (an error to report, a name given
    twice, a keyword that is no exact ``str``).  ``otrace._speedups.bind`` when built."""
    if any(type(k) is not str for k in kwargs):  # (as C's: no program __eq__/__hash__)
        return None
    out: dict[str, Any] = {}
    nargs = len(args)
    taken: list[str] = []  # keyword arguments bound to named parameters
    pos = 0
    empty = _EMPTY
    for name, kind, default in plan:
        if kind <= _POS_KW:
            if pos < nargs:
                if name in kwargs:
                    return None
                out[name] = args[pos]
                pos += 1
                continue
            pos = nargs + 1  # later positional parameters come by keyword or default
            if kind == _POS_KW and name in kwargs:
                out[name] = kwargs[name]
                taken.append(name)
            elif default is not empty:
                out[name] = default
            else:
                return None
        elif kind == _VAR:
            out[name] = args[pos:] if pos < nargs else ()
            pos = nargs
        elif kind == _KW:
            if name in kwargs:
                out[name] = kwargs[name]
                taken.append(name)
            elif default is not empty:
                out[name] = default
            else:
                return None
        else:
            out[name] = {k: v for k, v in kwargs.items() if k not in taken}
            taken = list(kwargs)
    if pos < nargs or len(taken) != len(kwargs):
        return None
    return out


def _value_text(value: Any) -> str:
    kind = type(value)
    if kind is str:  # as typed in conditions: unquoted
        return value if len(value) <= 200 else value[:200] + "..."
    if kind is int and -_SMALL < value < _SMALL:  # the usual argument, at once
        return int.__repr__(value)
    if id(kind) not in BY_CONTENT_IDS and not issubclass(kind, _NOT_INSTANCE):
        # (an instance of a program class, the usual ``self``: what brief shows, at once)
        text = object.__repr__(value)
        return text if len(text) <= 200 else text[:200] + "..."
    if issubclass(kind, type):  # (isinstance could ask the value's __class__)
        return type.__dict__["__name__"].__get__(value)
    return brief(value, 200)


_SMALL = 10**15
# classes whose instances brief (or _value_text) shows otherwise than by their address
_NOT_INSTANCE = (type, BaseException)


def format_call_args(call: Call) -> str:
    """``self=<...>, name=apple, qty=3`` for log lines (values bounded).

    Runs none of the program's code (no ``__repr__``/``__str__``): see :func:`brief`.
    """
    return args_text(call.site.varargs, call.arguments())


def args_text(varargs: str | None, bound: dict[str, Any]) -> str:
    """:func:`format_call_args` of arguments bound by name (``varargs``: the ``*args``
    parameter's name, shown without it).  Any thread: runs no program code."""
    if _c_args_text is not None:  # (the same text in C: otrace/_speedups.c)
        text = _c_args_text(varargs, bound, brief)
        if text is not None:
            return text
    parts = [
        (brief(value, 200) if value else "") if name == varargs else name + "=" + _value_text(value)
        for name, value in bound.items()
    ]
    if varargs is not None and "" in parts:
        parts = [part for part in parts if part]
    return ", ".join(parts)


def say(site: Site, text: str) -> None:
    """Announce a trace event (truncated to ``log_truncate``)."""
    site.tracer.recorder.announce(text, truncate=True)


def _evaluate(spec: TraceSpec, predicate: Predicate, call: Call) -> str | None:
    try:
        return predicate.match(call)
    except Exception as exc:  # a condition never breaks the traced call
        spec.note_error(exc)
        return None


def on_call(
    site: Site, spec: TraceSpec, args: tuple, kwargs: dict, frame: FrameType | None = None
) -> Call | None:
    """Call-time processing; returns the Call if anything remains to do at return.

    ``frame``: where the call stack shown starts (default: the frame calling this).
    """
    exec_hold = site.tracer.exec_hold
    if exec_hold.holds and not exec_hold.admit():  # typed code runs under exec_lock: untraced
        return None
    try:
        call = Call(site, spec, args, kwargs, frame if frame is not None else sys._getframe(1))
        predicate = spec.predicate
        if predicate is None:
            _related(call)
            return None
        if spec.when == "return":
            return call
        try:  # (_evaluate, inline)
            label = predicate.match(call)
        except Exception as exc:  # a condition never breaks the traced call
            spec.note_error(exc)
            label = None
        if label is None:
            _related(call)
            return None
        if not spec.take():
            return None
        _record(call, label)
        return call
    except Exception:
        log.exception("tracing the call of %s failed", site.name)
        return None


def on_return(call: Call, result: Any) -> holds.Hold | None:
    """Return-time processing; returns a hold the (async) wrapper must await, if any."""
    try:
        spec = call.spec
        ctx = call.ctx
        if ctx is not None:
            ctx["__trc"]["return_value"] = result  # (ctx.trc, without the property's call)
            if spec.log_return:
                say(call.site, f"{ctx.id} return {brief(result, 500)}")
            return None
        exec_hold = call.site.tracer.exec_hold
        if exec_hold.holds and not exec_hold.admit():  # typed code runs under exec_lock
            return None
        call.result, call.returned = result, True
        label = _evaluate(spec, spec.predicate, call) if spec.predicate is not None else None
        if label is None:
            _related(call)
            return None
        if not spec.take():
            return None
        if spec.action == "tag":
            _tag_self(call, label)
            return None
        _record(call, label, at_return=True)
        return call.hold
    except Exception:
        log.exception("tracing the return of %s failed", call.site.name)
        return None


def on_exception(
    site: Site, spec: TraceSpec, exc: BaseException, caller: FrameType | None = None
) -> None:
    """Record an ``exceptions`` context for ``exc`` leaving ``site``'s function for ``caller``.

    ``caller`` defaults to the caller of the frame calling this function (a wrapper's).
    """
    tracer = site.tracer
    exec_hold = tracer.exec_hold
    if exec_hold.holds and not exec_hold.admit():  # typed code runs under exec_lock: unrecorded
        return
    try:
        if caller is None:
            caller = sys._getframe(1).f_back
        recorder = tracer.recorder
        params = recorder.params
        values, trc = capture.capture_exception(
            exc, exc.__traceback__, caller, deep=params.deep_copy
        )
        trc["func"] = site.func
        trc["task"] = capture.current_task_name()
        prepare = None
        if params.append_traceback:
            prepare = lambda ctx: annotate.annotate(exc, ctx)  # noqa: E731
        recorder.record(
            "exceptions", site.name, type(exc).__name__, values, trc, say=_SAY_ID, prepare=prepare
        )
    except Exception:
        log.exception("recording the exception of %s failed", site.name)


def _context_id(ctx: TraceContext) -> str:
    return ctx.id


_SAY_ID = (_context_id,)  # an exception context announces its id


def _record(call: Call, label: str, at_return: bool = False) -> None:
    """Make the call/return context, announce it, then act (break, pdb, hold)."""
    site, spec = call.site, call.spec
    action = spec.action
    recorder = site.tracer.recorder
    if action is None:  # the usual: record and go on
        kind, note = "traces", ""
    else:
        kind, note = recorder.resolve_kind(
            "traces", action, site.is_async and holds.running_loop() is not None
        )
        if note.endswith(" refused"):  # break, pdb, ipdb on a thread that must not block
            note += ": this thread runs an event loop (or the console); use -a hold on an async def"
        elif note:
            note = "hold ignored: only async def functions can be held"
    bound = call.arguments()  # (the context copies it: the shallow snapshot)
    values = frames.snapshot(bound, True) if recorder.params.deep_copy else bound
    heard = recorder.heard()
    # announced, the argument text is made now; with nobody to tell (no console, no log
    # handler), when first read, from the values the context keeps (what browsing it shows;
    # the arguments only, not deep_copy's ``self_copy``)
    if heard:  # (format_call_args, without binding again)
        argstr: Any = args_text(site.varargs, bound)
    else:
        shown = values if values is bound else {name: values[name] for name in bound}
        argstr = lazy_text(args_text, (site.varargs, shown))
    trc: dict[str, Any] = {
        "func": site.func,
        "stack": call_stack.capture_call_stack(call.frame),
        "argstr": argstr,
        "task": capture.current_task_name(),
    }
    if at_return:
        trc["return_value"] = call.result
    ctx, live = recorder.record(kind, site.name, label, values, trc)
    if heard:  # the lines after the new id, before any break waits
        recorder.announce(ctx.id + " " + argstr, truncate=True)
        if at_return:
            recorder.announce(ctx.id + " return " + brief(call.result, 500), truncate=True)
        if note:
            recorder.announce(ctx.id + ": " + note, truncate=True)
    call.ctx = ctx
    if isinstance(live, holds.Break):
        live.wait()
    elif isinstance(live, holds.Hold):
        call.hold = live
    elif action in ("pdb", "ipdb") and not note:
        debugger.start_debugger(action, site.tracer)


def _tag_self(call: Call, label: str) -> None:
    from otrace.tracing.tags import tag

    obj = call.self_obj()
    if obj is None:
        call.spec.note_error(ConditionError(f"{call.site.name}: no self to tag"))
        return
    extra = {k: v for k, v in call.arguments().items() if k != "self"}
    try:
        tag(obj, f"{label};0x{id(obj):x}", _recorder=call.site.tracer.recorder, **extra)
    except Exception as exc:
        call.spec.note_error(exc)


def _related(call: Call) -> None:
    """``trace_related``: note calls whose arguments (or return value) carry a tag."""
    if not call.site.tracer.params.trace_related:
        return
    try:
        values = [v for _, v in call.flat_arguments()]
        if call.returned:
            values.append(call.result)
        owner = call.self_obj()
        for value in values:
            tag_id = get_tag(value)
            if not tag_id or value is owner:
                continue
            tag_ctx = call.site.tracer.recorder.store.get(tag_id)
            if tag_ctx is not None:
                key = type(owner).__name__ if owner is not None else call.site.name
                tag_ctx.trc.setdefault("related", {})[key] = (
                    owner if owner is not None else call.site.func
                )
            say(call.site, f"{call.site.name}: related to {tag_id} {format_call_args(call)}")
            return
    except Exception:
        log.exception("related tracing of %s failed", call.site.name)
