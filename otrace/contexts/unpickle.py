"""Loading stored values: restricted by default, full ``pickle`` only when trusted.

A context file is data that travels (post-mortem files are made to be shared), and a pickle
can name any callable to run while it loads.  So by default records load with a restricted
unpickler: only built-in value types (numbers, strings, bytes, containers, ``range``,
``slice``, built-in exceptions), a few value types of the standard library (``datetime``,
``decimal``, ``fractions``, ``uuid``, ``collections``, ``pathlib`` paths) and otrace's own
placeholder types are loaded.  Any other class or function a record names is replaced by a
:class:`Restricted` stand-in: calling it only keeps the arguments, and the pickled state
becomes plain attributes, so the object still browses like the original while no code of
the file's choosing runs.  ``trust=True`` loads with ``pickle`` itself (classes that cannot be
imported here still become :class:`Unresolved` stand-ins).

Values that could not be stored (:class:`Unpicklable`) and stand-ins say what they are when
touched: reading a missing attribute or calling one raises :class:`PlaceholderError`.

Everything a file names (type and module names, attribute names, ``repr`` text) is shown
with control characters escaped, so a crafted file cannot drive the operator's terminal.

Thread safety: every function may be called from any thread; the stand-in class cache is
filled under a lock.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import io
import pathlib
import pickle
import threading
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

from otrace.contexts.safe import escape_controls, safe_repr
from otrace.errors import OTraceError

# The on-disk name of the placeholder types (files written before this module existed, and
# every file written since, name them there).
_STORED_MODULE = "otrace.contexts.sanitize"


class PlaceholderError(OTraceError, AttributeError):
    """A stored value that is only a placeholder was used as if it were the real object.

    An ``AttributeError``, so ``hasattr`` and ``getattr(x, name, default)`` still work.
    """


@dataclass(frozen=True)
class Unpicklable:
    """Stands for a value that could not be stored (or loaded): its type and a bounded repr."""

    type_name: str
    module: str
    repr_text: str
    reason: str = ""

    def __repr__(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        text = f"<unpicklable {self.module}.{self.type_name}{why}: {self.repr_text}>"
        return escape_controls(text)

    __str__ = __repr__

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise PlaceholderError(
            escape_controls(
                f"{name}: the stored value is a placeholder for a "
                f"{self.module}.{self.type_name} that was not stored"
                + (f" ({self.reason})" if self.reason else "")
                + f"; it looked like {self.repr_text}"
            )
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise PlaceholderError(
            escape_controls(
                f"cannot call a placeholder for a {self.module}.{self.type_name} "
                "that was not stored"
            )
        )


@dataclass(frozen=True)
class Blob:
    """One value pickled on its own (loaded by :func:`otrace.contexts.sanitize.decode`).

    ``repr_text`` is the value's bounded ``repr`` when it was stored (empty in files written
    before it was recorded); a restricted load shows it.
    """

    data: bytes
    type_name: str
    module: str
    repr_text: str = ""


for _cls in (Unpicklable, Blob):
    _cls.__module__ = _STORED_MODULE


class Unresolved:
    """Base of stand-ins for classes that are not loaded: missing here, or not trusted.

    A stand-in is called like the missing class (its arguments are kept in ``_args``) and
    takes the pickled state as attributes, so the object still browses like the original.
    """

    # class-level, named like dunders so that ls does not list them beside the stored state
    __otrace_missing__ = ""
    __otrace_why__ = "its class cannot be imported here"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args:
            self._args = args
        if kwargs:
            self._kwargs = kwargs

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict, slots) state
        if isinstance(state, dict):
            rest = {}
            for key, value in state.items():
                # only plain names become attributes: a crafted state must not set
                # __class__, __dict__ or names that would print as control characters
                if isinstance(key, str) and key.isidentifier() and not key.startswith("__"):
                    object.__setattr__(self, key, value)
                else:
                    rest[escape_controls(safe_repr(key, 100))] = value
            if rest:
                object.__setattr__(self, "_state", rest)
        else:
            object.__setattr__(self, "_state", state)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise PlaceholderError(
            escape_controls(
                f"{name}: not stored in this stand-in for {self.__otrace_missing__} ({self.__otrace_why__}); "
                "only its stored attributes are here"
            )
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise PlaceholderError(
            escape_controls(
                f"cannot call a stand-in for {self.__otrace_missing__} ({self.__otrace_why__})"
            )
        )

    def __repr__(self) -> str:
        stored = _REPRS.get(self)
        if stored:
            return escape_controls(f"<{self.__otrace_label__} {self.__otrace_missing__}: {stored}>")
        attrs = ", ".join(f"{k}={safe_repr(v, 60)}" for k, v in list(vars(self).items())[:8])
        return escape_controls(f"<{self.__otrace_label__} {self.__otrace_missing__}({attrs})>")

    __otrace_label__ = "unresolved"


class Restricted(Unresolved):
    """Base of stand-ins for what a restricted load did not run: any non-value class or
    function named in the file."""

    __otrace_why__ = (
        "not loaded: the file is not trusted; open it with --trust to load real objects"
    )
    __otrace_label__ = "restricted"


# repr text recorded by the writer, for stand-ins made from a whole stored value
_REPRS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
# A pure cache: one stand-in class per (module, name, restricted), the same for every runtime.
_STANDINS: dict[tuple[str, str, bool], type] = {}
_standin_lock = threading.Lock()


def standin(module: str, name: str, *, restricted: bool) -> type:
    """The (cached) stand-in class for ``module.name``."""
    key = (module, name, restricted)
    with _standin_lock:
        cls = _STANDINS.get(key)
        if cls is None:
            base = Restricted if restricted else Unresolved
            label = escape_controls(f"{module}.{name}")
            title = "".join(c if c.isalnum() else "_" for c in name) or "_"
            if not title[0].isalpha() and title[0] != "_":
                title = "_" + title
            cls = type(title, (base,), {"__otrace_missing__": label})
            cls.__module__ = "otrace.contexts.unpickle._standins"
            _STANDINS[key] = cls
        return cls


def note_repr(obj: Any, text: str) -> None:
    """Remember the writer's ``repr`` of a stand-in made from one stored value."""
    if text and isinstance(obj, Unresolved):
        try:
            _REPRS[obj] = text
        except TypeError:
            pass


def _allowed() -> dict[tuple[str, str], Any]:
    import builtins

    names = (
        "bool int float complex str bytes bytearray list tuple dict set frozenset "
        "range slice Ellipsis NotImplemented"
    ).split()
    table: dict[tuple[str, str], Any] = {("builtins", n): getattr(builtins, n) for n in names}
    for n, value in vars(builtins).items():
        if isinstance(value, type) and issubclass(value, BaseException):
            table["builtins", n] = value
    for module, objects in (
        (collections, ("OrderedDict", "defaultdict", "deque", "Counter")),
        (datetime, ("date", "time", "datetime", "timedelta", "timezone")),
        (decimal, ("Decimal",)),
        (fractions, ("Fraction",)),
        (uuid, ("UUID", "SafeUUID")),
        (pathlib, ("PurePath", "PurePosixPath", "PureWindowsPath", "PosixPath", "WindowsPath")),
    ):
        for n in objects:
            cls = getattr(module, n)
            table[module.__name__, n] = cls
            # where pickle says the class lives (pathlib._local in 3.13 and later), so a
            # file written by any supported Python loads in any other
            table[str(cls.__module__), cls.__qualname__] = cls
            if module is pathlib:
                table["pathlib._local", n] = cls
    table[_STORED_MODULE, "Unpicklable"] = Unpicklable
    table[_STORED_MODULE, "Blob"] = Blob
    return table


ALLOWED = _allowed()


class _TrustedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except Exception:
            return standin(module, name, restricted=False)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = ALLOWED.get((module, name))
        if found is not None:
            return found
        return standin(str(module), str(name), restricted=True)


def loads(data: bytes, *, trust: bool = False) -> Any:
    """Unpickle ``data``: restricted (see the module docstring) unless ``trust``."""
    cls = _TrustedUnpickler if trust else _RestrictedUnpickler
    return cls(io.BytesIO(data)).load()
