"""``trace`` / ``untrace``: resolve a target, install wrappers, register the trace spec.

Targets and their registry keys:

* a function of a module -> ``f`` (bare name; same-named functions of different modules share
  the key, as in the original);
* a method (function, classmethod, staticmethod or property of a class) -> ``Class.method``;
* a class -> ``Class.`` (its own ``__dict__`` methods, never ``__repr__``/``__str__`` nor the
  attribute-access hooks and implicit classmethods, see :data:`NEVER_WRAPPED`);
* a module -> ``module.*`` (its functions and classes defined in it);
* ``"*"`` -> every function already wrapped by some other trace.

**Inherited methods (a documented choice):** a method named through a subclass
(``Cart.inherited`` where ``Base`` defines it) is wrapped on the defining class and the trace
is keyed and named ``Base.inherited`` -- so calls through every subclass of ``Base`` are
traced.  The spec carries a warning saying so.

Thread rules: every function here may be called from any thread (the shell's, usually);
installation and registry changes are serialized by the tracer's lock.  Each function acts on
``tracer`` (a runtime's :class:`~otrace.tracing.registry.Tracer`), by default the default
runtime's.
"""

from __future__ import annotations

import inspect
import sys
from types import ModuleType
from typing import Any

from otrace import _default
from otrace.contexts.safe import safe_str
from otrace.errors import TraceError
from otrace.tracing import instrument
from otrace.tracing.condition_parse import missing_names, parse_condition
from otrace.tracing.conditions import Predicate
from otrace.tracing.engine import ACTIONS, TraceSpec
from otrace.tracing.install import Patch, cached_function, wrap_raw
from otrace.tracing.registry import Tracer
from otrace.tracing.wrappers import is_wrapper

NEVER_WRAPPED = frozenset(
    {
        "__repr__",
        "__str__",
        "__format__",
        "__getattribute__",
        "__getattr__",
        "__setattr__",
        "__delattr__",
        "__new__",
        "__init_subclass__",
        "__class_getitem__",
        "__del__",
    }
)


def _tracer(tracer: Tracer | None) -> Tracer:
    return tracer if tracer is not None else _default.get().tracer


def _install(parent: Any, attr: str, name: str, keys: tuple[str, ...], tracer: Tracer) -> Patch:
    """Wrap ``parent.attr`` (or return the existing patch)."""
    slot = (id(parent), attr)
    patch = tracer.patches.get(slot)
    if patch is not None:
        return patch
    in_class = isinstance(parent, type)
    raw = parent.__dict__[attr] if in_class else getattr(parent, attr)
    inner = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
    if is_wrapper(inner) or (isinstance(raw, property) and is_wrapper(raw.fget)):
        raise TraceError(f"Cannot trace {name}: already wrapped elsewhere")
    installed, sites = wrap_raw(raw, name, keys, in_class, tracer)
    if installed is not raw:  # else traced in place: the attribute is untouched
        setattr(parent, attr, installed)
    patch = Patch(parent, attr, raw, installed, sites)
    tracer.patches[slot] = patch
    for site in sites:
        tracer.add_site(site)
    return patch


def _uninstall(patch: Patch, tracer: Tracer) -> None:
    tracer.patches.pop((id(patch.parent), patch.attr), None)
    for site in patch.sites:
        tracer.drop_site(site)
        instrument.release(site)
    if patch.installed is not patch.original:
        patch.uninstall()


def _module_key(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None) or '?'}.*"


def _method_keys(cls: type, attr: str) -> tuple[str, ...]:
    return (f"{cls.__name__}.{attr}", f".{attr}", f"{cls.__name__}.", _module_key(cls), "*")


def _function_keys(func: Any, attr: str) -> tuple[str, ...]:
    return (attr, _module_key(func), "*")


def _class_targets(cls: type) -> list[tuple[Any, str, str, tuple[str, ...]]]:
    out = []
    for attr, raw in list(vars(cls).items()):
        if attr in NEVER_WRAPPED:
            continue
        func = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
        if isinstance(raw, property):
            func = raw.fget or raw.fset or raw.fdel
        if inspect.isfunction(func) or cached_function(raw) is not None:
            out.append((cls, attr, f"{cls.__name__}.{attr}", _method_keys(cls, attr)))
    return out


def _module_targets(module: ModuleType) -> list[tuple[Any, str, str, tuple[str, ...]]]:
    out = []
    for attr, obj in list(vars(module).items()):
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj) or cached_function(obj) is not None:
            out.append((module, attr, attr, _function_keys(obj, attr)))
        elif inspect.isclass(obj):
            out.extend(_class_targets(obj))
    return out


def _defining_class(cls: type, attr: str) -> tuple[type, str]:
    names = [attr]
    if attr.startswith("__") and not attr.endswith("__"):
        names.append(f"_{cls.__name__.lstrip('_')}{attr}")
    for klass in cls.__mro__:
        for candidate in names:
            if candidate in vars(klass):
                return klass, candidate
    raise TraceError(f"Invalid class/method for tracing: {cls.__name__}.{attr}")


def _resolve(target: Any, parent: Any, attr: str | None) -> tuple[str, list, list[str]]:
    """(registry key, [(parent, attr, name, keys)...], warnings) for a trace target."""
    warnings: list[str] = []
    if isinstance(target, str) and target == "*":
        return "*", [], warnings
    if inspect.ismodule(target):
        return f"{target.__name__}.*", _module_targets(target), warnings
    if inspect.isclass(target) and (
        parent is None
        or attr is None
        or not isinstance(parent, type)
        or vars(parent).get(attr) is not target
    ):
        return f"{target.__name__}.", _class_targets(target), warnings
    if inspect.isclass(target):  # a class nested in a class: still a class trace
        return f"{target.__name__}.", _class_targets(target), warnings
    if inspect.ismethod(target):  # bound method: the class is the parent
        owner = target.__self__
        parent = owner if isinstance(owner, type) else type(owner)
        attr = target.__func__.__name__
    if is_wrapper(target):
        target = target._otrace_orig_function
    if parent is None:
        parent, attr = _find_parent(target)
    if attr is None:
        attr = getattr(target, "__name__", None)
        if attr is None:
            raise TraceError(f"Cannot trace {type(target).__name__}")
    if isinstance(parent, type):
        klass, real = _defining_class(parent, attr)
        if klass is not parent:
            warnings.append(
                f"{attr} is inherited: traced on {klass.__name__}, the class that defines it"
            )
        name = f"{klass.__name__}.{attr}"
        return name, [(klass, real, name, _method_keys(klass, attr))], warnings
    if not hasattr(parent, attr):
        raise TraceError(f"Invalid class/method/key for tracing: {attr}")
    return attr, [(parent, attr, attr, _function_keys(getattr(parent, attr), attr))], warnings


def _find_parent(func: Any) -> tuple[Any, str]:
    """The module or class holding a function, from its ``__module__``/``__qualname__``."""
    module = sys.modules.get(getattr(func, "__module__", "") or "")
    qual = getattr(func, "__qualname__", "")
    if module is None or not qual or "<locals>" in qual:
        shown = getattr(func, "__name__", None)
        shown = shown if isinstance(shown, str) else safe_str(func, 200)
        raise TraceError(f"Cannot trace {shown!r}: give its parent and attribute name")
    *outer, attr = qual.split(".")
    parent: Any = module
    for part in outer:
        parent = getattr(parent, part)
    return parent, attr


def trace(
    target: Any,
    parent: Any = None,
    attr_name: str | None = None,
    *,
    name: str | None = None,
    condition: str | Predicate | None = "",
    action: str | None = None,
    count: int = 0,
    tracer: Tracer | None = None,
) -> TraceSpec:
    """Trace ``target`` (see the module docstring) and return its spec.

    :param target: function, method, property, class, module, or ``"*"``.
    :param parent: the class or module ``target`` is an attribute of (found from
        ``__qualname__`` when omitted); the attribute is rebound there.
    :param attr_name: the attribute's name on ``parent`` (default: ``target.__name__``).
    :param name: name shown by :meth:`TraceSpec.render` (the registry key stays computed).
    :param condition: ``-c`` text or a predicate; empty = exceptions only.
    :param action: one of ``break pdb ipdb hold tag`` or None.
    :param count: ``N`` trace N matches then drop the spec; ``-N`` skip N matches first.
    :raises TraceError: unknown target/condition/action, builtins, ``hold`` on a function that
        is not ``async def``.
    """
    if action is not None and action not in ACTIONS:
        raise TraceError(f"Invalid action {action!r}: expected one of {', '.join(ACTIONS)}")
    predicate = (
        parse_condition(condition or "")
        if isinstance(condition, str) or condition is None
        else condition
    )
    if not isinstance(count, int) or isinstance(count, bool):
        raise TraceError("Expected integer argument for option -n")
    tracer = _tracer(tracer)
    # Resolving reads program objects (getattr, repr in messages): never under the lock,
    # which traced threads need too.
    key, targets, warnings = _resolve(target, parent, attr_name)
    if action == "hold" and len(targets) == 1:
        raw = (
            vars(targets[0][0]).get(targets[0][1])
            if isinstance(targets[0][0], type)
            else getattr(targets[0][0], targets[0][1])
        )
        func = getattr(raw, "__func__", raw)
        if not (inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)):
            raise TraceError(
                f"Cannot hold {key}: only async def functions can be held (use -a break)"
            )
    is_class = inspect.isclass(target)
    bulk = is_class or inspect.ismodule(target)
    with tracer.locked():
        patches: list[Patch] = []
        for p, a, n, k in targets:
            try:
                patches.append(_install(p, a, n, k, tracer))
            except TraceError as exc:
                if not bulk:
                    raise
                warnings.append(f"skipped: {exc}")
        spec = TraceSpec(key, predicate, action, count, display=name)
        spec.warnings.extend(warnings)
        if action and predicate is None:
            spec.warnings.append(
                f"-a {action} has no effect without a condition (-c); exceptions only"
            )
        for patch in patches:
            for site in patch.sites:
                because = getattr(site, "wrapped_because", None)
                if because:
                    spec.warnings.append(f"{site.name}: traced with a wrapper ({because})")
                alias = getattr(site, "alias_of", None)
                if alias is not None:
                    spec.warnings.append(
                        f"{site.name} is the same function as {alias.name}: traced as {alias.name}"
                    )
                missing = missing_names(predicate, set(site.params), site.varkw is not None)
                if missing:
                    spec.warnings.append(
                        f"{site.name} has no argument {', '.join(missing)}: never matches"
                    )
            patch.owners.add(key)
        owned = tracer.owned.setdefault(key, [])
        owned.extend(p for p in patches if p not in owned)
        tracer.register(spec)
    if is_class:
        try:
            target._otrace_class_trace = True
        except (AttributeError, TypeError):
            pass
    return spec


def _key_of(obj: Any, tracer: Tracer) -> str | None:
    if isinstance(obj, str):
        return obj
    if inspect.ismodule(obj):
        return f"{obj.__name__}.*"
    if inspect.isclass(obj):
        return f"{obj.__name__}."
    func = getattr(obj, "__func__", obj)
    for patch in tracer.patches.values():
        for site in patch.sites:
            if func is site.func or func is site.wrapper:
                return site.name
    return None


def untrace(target: Any, tracer: Tracer | None = None) -> bool:
    """Stop a trace (key like ``Cart.add_item``/``Cart.``/``*``, or the object) and unwrap it.

    Wrappers shared with another still-registered trace stay.  Raises TraceError if nothing
    is traced under that name.  Any thread.
    """
    tracer = _tracer(tracer)
    key = _key_of(target, tracer)
    is_class = inspect.isclass(target)
    with tracer.locked():
        known = key is not None and (key in tracer.owned or tracer.get_spec(key) is not None)
        if known:
            assert key is not None
            tracer.unregister(key)
            for patch in tracer.owned.pop(key, []):
                patch.owners.discard(key)
                if not patch.owners:
                    _uninstall(patch, tracer)
    if not known:  # formatted outside the lock: str() of a program object is program code
        raise TraceError(f"Invalid class/method for untracing: {safe_str(target, 200)}")
    if is_class and "_otrace_class_trace" in vars(target):
        try:
            del target._otrace_class_trace
        except (AttributeError, TypeError):
            pass
    return True


def untrace_all(tracer: Tracer | None = None) -> None:
    """Drop every trace spec; wrappers stay installed, as pass-through.  Any thread."""
    _tracer(tracer).clear_registry()


def unwrap_all(tracer: Tracer | None = None) -> None:
    """Drop every spec and remove every wrapper (tests, shutdown)."""
    tracer = _tracer(tracer)
    with tracer.locked():
        tracer.clear_registry()
        for patch in list(tracer.patches.values()):
            _uninstall(patch, tracer)
        tracer.owned.clear()
    if tracer.params.trace_active:
        tracer.params.set("trace_active", False)


def traces(tracer: Tracer | None = None) -> list[TraceSpec]:
    """The registered trace specs, sorted by key."""
    return _tracer(tracer).specs()


def wrapped(tracer: Tracer | None = None) -> list[str]:
    """Names of every function currently wrapped (traced or pass-through)."""
    tracer = _tracer(tracer)
    with tracer.locked():
        return sorted(site.name for patch in tracer.patches.values() for site in patch.sites)
