"""Reading program objects without running any of their code (what safe mode uses).

Safe mode promises read-only inspection: nothing the shell does may run code the program
defined.  The functions here read attributes, list names, index containers and show values
using only operations whose behaviour is fixed by CPython for the types involved:

* :func:`static_get` reads an attribute the way ``getattr`` would, but refuses (with
  :class:`Impure`) when that would run program code: a ``property``, ``cached_property`` or
  any descriptor whose ``__get__`` is written in Python, a class that overrides
  ``__getattribute__``, or a miss that ``__getattr__`` would handle.  Plain values,
  functions (bound as methods), static/class methods and C slots are read.
* :func:`static_names` lists names from the instance ``__dict__`` and the classes'
  ``__dict__`` (never ``__dir__``).
* :func:`is_pure_value` says whether a value (deeply, for containers) is made of builtin
  scalars and exact builtin containers, whose ``==``, ``hash``, ``repr`` and ``format`` are
  CPython's own.
* :func:`pure_repr` shows any value: pure values as ``repr``, other objects as
  ``<module.Class object at 0x...>`` without calling their ``__repr__``.

Private names (starting with ``_``) are the caller's business (see :func:`is_private`).

Thread safety: pure functions; they read objects other threads may be changing.
"""

from __future__ import annotations

import types
from itertools import islice
from typing import Any

from otrace.contexts.lazy import materialise
from otrace.errors import SafeModeError

HINT = "set safe_mode False"
# otrace's own entries in contexts (a chained exception's cause and context too)
OTRACE_NAMES = frozenset({"__trc", "__up", "__down", "__cause__", "__context__"})

SCALARS: tuple[type, ...] = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    type(Ellipsis),
)
CONTAINERS: tuple[type, ...] = (tuple, list, dict, set, frozenset)
MAX_ITEMS = 100_000  # how many items a purity check walks before it refuses
MAX_KEY_SCAN = 5_000_000  # keys a dict lookup checks for program-defined types

_type_dict = type.__dict__["__dict__"].__get__
_type_mro = type.__dict__["__mro__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__
_type_module = type.__dict__["__module__"].__get__
_C_DESCRIPTORS = (
    types.MemberDescriptorType,
    types.GetSetDescriptorType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
    types.WrapperDescriptorType,
)
_PLAIN_GETATTRIBUTE = (
    object.__getattribute__,
    type.__getattribute__,
    types.ModuleType.__getattribute__,
)


class Impure(SafeModeError):
    """Reading or computing this would run the program's code."""


class Unread:
    """Stands for a value safe mode did not read (a property, ...) in listings."""

    def __init__(self, why: str):
        self.why = why

    def __repr__(self) -> str:
        return f"<not read in safe mode: {self.why}>"


def refused(what: str) -> Impure:
    return Impure(f"{what} not permitted in safe mode; {HINT}")


def _is(value: Any, cls: type | tuple[type, ...]) -> bool:
    """``isinstance`` by the real type: a program's ``__class__`` is never asked."""
    return issubclass(type(value), cls)


def is_trusted(t: type) -> bool:
    """A type otrace itself defines (contexts, stored records, placeholders): its code is ours."""
    try:
        module = _type_module(t)
    except Exception:  # pragma: no cover
        return False
    return isinstance(module, str) and (module == "otrace" or module.startswith("otrace."))


def is_private(name: str) -> bool:
    """A name safe mode hides: starts with ``_`` (otrace's ``__trc``/``__up``/``__down`` aside)."""
    return name.startswith("_") and name not in OTRACE_NAMES


def type_name(obj: Any) -> str:
    """``module.Qualname`` of ``type(obj)``, read without running program code."""
    t = type(obj)
    try:
        module = _type_module(t)
        qual = _type_qualname(t)
    except Exception:  # pragma: no cover - C types always have both
        return "object"
    module = module if isinstance(module, str) else "?"
    qual = qual if isinstance(qual, str) else "?"
    return qual if module == "builtins" else f"{module}.{qual}"


def _lookup_class(t: type, name: str) -> tuple[bool, Any]:
    """``name`` in the ``__dict__`` of ``t``'s MRO (static; no descriptors run)."""
    for klass in _type_mro(t):
        d = _type_dict(klass)
        if name in d:  # a mappingproxy of str keys: pure
            return True, d[name]
    return False, None


def _has_python_method(t: type, name: str) -> bool:
    found, value = _lookup_class(t, name)
    return found and _is(value, types.FunctionType)


def _is_data_descriptor(value: Any) -> bool:
    vt = type(value)
    return _lookup_class(vt, "__set__")[0] or _lookup_class(vt, "__delete__")[0]


def _bind(value: Any, obj: Any, owner: type) -> Any:
    """What reading a class attribute through ``obj`` gives, if that runs no program code."""
    if _is(value, types.FunctionType):
        return value if obj is None else types.MethodType(value, obj)
    if _is(value, staticmethod):
        return value.__func__
    if _is(value, classmethod):
        return types.MethodType(value.__func__, owner)
    if _is(value, _C_DESCRIPTORS):
        return value.__get__(obj, owner)
    if _is(value, types.BuiltinFunctionType):  # C functions do not bind
        return value
    if _is(value, property):
        if obj is None:
            return value
        raise refused("reading a property (runs its code)")
    if _lookup_class(type(value), "__get__")[0]:
        if obj is None and not _has_python_method(type(value), "__get__"):
            return value.__get__(None, owner)
        raise refused(f"reading a {type_name(value)} (runs program code)")
    return value


def static_get(obj: Any, name: str, scalar_keys: bool | None = None) -> Any:
    """``getattr(obj, name)`` without running program code; AttributeError if absent.

    ``scalar_keys``: the caller's cached :func:`instance_scalar_keys` of ``obj`` (one scan
    of its ``__dict__`` for many reads, as a listing does).

    :raises Impure: the read would run program code.
    """
    t = type(obj)
    if is_trusted(t):  # otrace's own objects (contexts, stored stand-ins): their code is ours
        return getattr(obj, name)
    getattribute = _lookup_class(t, "__getattribute__")[1]
    if getattribute not in _PLAIN_GETATTRIBUTE:
        raise refused(f"reading {type_name(obj)} attributes (its __getattribute__ is code)")
    if _is(obj, type):
        found, meta_value = _lookup_class(t, name)
        if found and _is_data_descriptor(meta_value):
            return _bind(meta_value, obj, t)
        for klass in _type_mro(obj):
            d = _type_dict(klass)
            if name in d:
                return _bind(d[name], None, obj)
        if found:
            return _bind(meta_value, obj, t)
        raise AttributeError(name)
    found, cls_value = _lookup_class(t, name)
    if found and _is_data_descriptor(cls_value):
        return _bind(cls_value, obj, t)
    inst = _instance_dict(obj)
    if inst is not None:
        hit, value = dict_lookup(inst, name, scalar_keys)
        if hit:
            return value
    if found:
        return _bind(cls_value, obj, t)
    if _lookup_class(t, "__getattr__")[0]:
        raise refused(f"{type_name(obj)}.__getattr__ for {name!r} (program code)")
    raise AttributeError(name)


def _instance_dict(obj: Any) -> dict | None:
    if _is(obj, types.ModuleType):
        d = object.__getattribute__(obj, "__dict__")
        return d if type(d) is dict else None
    found, slot = _lookup_class(type(obj), "__dict__")
    if not found or not _is(slot, types.GetSetDescriptorType):
        return None
    try:
        d = slot.__get__(obj, type(obj))
    except Exception:
        return None
    return d if type(d) is dict else None


def instance_scalar_keys(obj: Any) -> bool | None:
    """:func:`all_scalar_keys` of ``obj``'s plain ``__dict__``; None if it has none."""
    inst = _instance_dict(obj)
    return None if inst is None else all_scalar_keys(inst)


def static_names(obj: Any, limit: int | None = None) -> list[str]:
    """Attribute names of ``obj`` from ``__dict__``s only (never ``__dir__``)."""
    names: dict[str, None] = {}
    inst = obj if _is(obj, type) else None
    if inst is None:
        d = _instance_dict(obj)
        if d is not None:
            for k in list(d)[: MAX_ITEMS if limit is None else limit]:
                if type(k) is str:
                    names[k] = None
        classes = _type_mro(type(obj))
    else:
        classes = _type_mro(inst)
    for klass in classes:
        for k in list(_type_dict(klass)):
            if type(k) is str:
                names[k] = None
        if limit is not None and len(names) >= limit:
            break
    out = list(names)
    return out if limit is None else out[:limit]


def dict_lookup(d: dict, key: Any, scalar_keys: bool | None = None) -> tuple[bool, Any]:
    """(found, value) for ``key`` in an exact dict, never calling a key's ``__eq__``.

    ``d[key]`` compares stored keys whose hash collides, and a program's key may answer
    ``__eq__``; here only keys of the same pure scalar type are compared.  ``scalar_keys``:
    the caller's cached :func:`all_scalar_keys` (one scan for many lookups).
    """
    if type(key) not in SCALARS:
        raise refused(f"a {type_name(key)} key (its hash/eq is program code)")
    materialise(d)  # read below through dict's own methods
    if scalar_keys is None:
        scalar_keys = all_scalar_keys(d)
    if scalar_keys:  # then no key can answer __eq__ with program code: the dict's own lookup
        try:
            value = dict.get(d, key, _MISSING)
        except Exception:
            value = _MISSING
        return (value is not _MISSING), (None if value is _MISSING else value)
    for k, v in list(dict.items(d)):
        if type(k) is type(key) and k == key:
            return True, v
    return False, None


def all_scalar_keys(d: dict) -> bool:
    """Every key of ``d`` is a pure scalar (lookups then run no program code); O(len(d))."""
    materialise(d)
    if len(d) > MAX_KEY_SCAN:
        raise refused("looking up a key in a dict this large")
    # the distinct key types, gathered at C speed (type() runs no program code): 100,000
    # keys take about 5 ms instead of 40 ms one by one
    return set(map(type, list(dict.keys(d)))).issubset(SCALARS)


_MISSING = object()


def is_pure_value(value: Any, budget: int = MAX_ITEMS) -> bool:
    """Builtin scalars and exact builtin containers of them, all the way down."""
    stack = [value]
    seen = 0
    while stack:
        v = stack.pop()
        seen += 1
        if seen > budget:
            return False
        t = type(v)
        if t in SCALARS or t is range or t is slice:
            continue
        if t is dict:
            if seen + 2 * len(v) > budget:  # refused without copying a huge container
                return False
            stack.extend(dict.keys(v))
            stack.extend(dict.values(v))
        elif t in CONTAINERS:
            if seen + len(v) > budget:
                return False
            stack.extend(v)
        else:
            return False
    return True


def pure_repr(value: Any, limit: int = 2000) -> str:
    """``repr`` for pure values; ``<module.Class object at 0x...>`` for everything else."""
    out: list[str] = []
    _repr_into(value, out, 0, [limit])
    text = "".join(out)
    return text if len(text) <= limit else text[:limit] + "..."


def _repr_into(value: Any, out: list[str], depth: int, room: list[int]) -> None:
    if room[0] <= 0:
        out.append("...")
        return
    t = type(value)
    if t is Unread:
        text = repr(value)
    elif t in SCALARS:
        if t is int and value.bit_length() > 4000:
            text = f"<int of {value.bit_length()} bits>"
        elif t in (str, bytes) and len(value) > room[0]:
            text = repr(value[: room[0]]) + "..."
        else:
            text = repr(value)
    elif (t in CONTAINERS or (dict in _type_mro(t) and is_trusted(t))) and depth < 6:
        _container_repr(value, out, depth, room)
        return
    elif t in CONTAINERS:
        text = "[...]" if t is list else "(...)" if t is tuple else "{...}"
    elif is_trusted(t):  # otrace's own types show themselves (stand-ins say what they are)
        try:
            text = repr(value)
        except Exception:
            text = f"<{type_name(value)} object>"
    elif t in (types.FunctionType, types.BuiltinFunctionType, types.MethodType):
        func = value.__func__ if t is types.MethodType else value
        name = (
            func.__qualname__
            if type(func) in (types.FunctionType, types.BuiltinFunctionType)
            else "?"
        )
        text = f"<{'method' if t is types.MethodType else 'function'} {name}>"
    elif t is types.ModuleType:
        name = _instance_dict(value) or {}
        text = f"<module {name.get('__name__', '?')!r}>"
    elif _is(value, type):
        text = f"<class {_class_name(value)!r}>"
    else:
        text = f"<{type_name(value)} object at {id(value):#x}>"
    room[0] -= len(text)
    out.append(text)


def _class_name(cls: type) -> str:
    module, qual = _type_module(cls), _type_qualname(cls)
    return qual if module == "builtins" or not isinstance(module, str) else f"{module}.{qual}"


def _first(it: Any, value: Any, n: int = 101) -> list:
    for _ in range(2):
        try:
            return list(islice(it(value), n))
        except RuntimeError:  # changed size while read: once more
            continue
    return []


def _container_repr(value: Any, out: list[str], depth: int, room: list[int]) -> None:
    t = type(value)
    if dict in _type_mro(t):
        # 101 entries at most, one C call: all of them would hold the GIL and make a tuple
        # per entry for the garbage collector (see otrace.contexts.piecewise)
        materialise(value)
        items = _first(dict.items, value)
        out.append("{")
        for i, (k, v) in enumerate(items):
            if i:
                out.append(", ")
            if i >= 100 or room[0] <= 0:
                out.append("...")
                break
            _repr_into(k, out, depth + 1, room)
            out.append(": ")
            _repr_into(v, out, depth + 1, room)
        out.append("}")
        return
    items = _first(iter, value)
    opener, closer = ("[", "]") if t is list else ("(", ")") if t is tuple else ("{", "}")
    if t is frozenset:
        opener, closer = "frozenset({", "})"
    if t is set and not items:
        out.append("set()")
        return
    out.append(opener)
    for i, item in enumerate(items):
        if i:
            out.append(", ")
        if i >= 100 or room[0] <= 0:
            out.append("...")
            break
        _repr_into(item, out, depth + 1, room)
    if t is tuple and len(items) == 1:
        out.append(",")
    out.append(closer)
