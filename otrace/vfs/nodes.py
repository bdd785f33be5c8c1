"""Objects presented as directories.

:func:`as_dir` picks the view for a value:

========================  =================================================================
value                     entries
========================  =================================================================
``Mapping``               its keys (``str(key)``; a digits-only name also finds an int key)
``list`` / ``tuple``      ``0``, ``1``, ... (item assignment allowed, no appends)
:class:`FsPath`           a real directory's file names (``/`` also shows ``osh``)
``None``                  cannot be entered (a stale directory)
anything else             an attribute view: ``dir(obj)``, ``getattr``, ``setattr``
========================  =================================================================

Every view survives hostile objects: a ``dir`` or ``getattr`` that raises gives no entry,
never an exception out of the shell.  Views read live; they hold no copies.

Thread safety: views are made and used by the shell thread; the objects they look at may be
changed by the program at the same time, and listing takes a snapshot of the names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

from otrace.contexts.lazy import materialise
from otrace.errors import PathError, SafeModeError
from otrace.vfs import pure as _pure


@dataclass(frozen=True)
class FsPath:
    """A path in the real filesystem (so it browses as a directory, not as a str)."""

    path: str

    def is_dir(self) -> bool:
        return os.path.isdir(self.path)

    def __str__(self) -> str:
        return self.path


class Dir:
    """A value seen as a directory.  Subclasses implement the four operations.

    A *pure* view (safe mode) runs no program code and shows no private names: listing
    skips names starting with ``_``, looking one up is refused, and values are read with
    :mod:`otrace.vfs.pure` (no properties, ``__getattr__``, ``__getitem__`` overrides).
    """

    def __init__(self, value: Any, pure: bool = False):
        self.value = value
        self.pure = pure

    def _check_name(self, name: str) -> None:
        if self.pure and _pure.is_private(name):
            raise SafeModeError(
                f"private names (starting with '_') are not shown in safe mode: {name}; "
                + _pure.HINT
            )

    def _public(self, names: list[str]) -> list[str]:
        return [n for n in names if not _pure.is_private(n)] if self.pure else names

    def names(self, limit: int | None = None) -> list[str]:
        """Entry names, at most ``limit`` of them (unsorted)."""
        raise NotImplementedError

    def count(self) -> int | None:
        """How many entries there are, when that is cheap to know."""
        return None

    def get(self, name: str) -> Any:
        """The entry's value; ``KeyError`` if there is no such entry."""
        raise NotImplementedError

    def set(self, name: str, value: Any) -> None:
        raise PathError(f"cannot assign to {name!r} here")

    def delete(self, name: str) -> None:
        raise PathError(f"cannot delete {name!r} here")

    def contains(self, name: str) -> bool:
        try:
            self.get(name)
        except KeyError:
            return False
        return True


class MappingDir(Dir):
    value: Mapping
    trusted = False  # an otrace type: read through its own methods even when pure
    _scalar_keys: bool | None = None  # pure: every key a builtin scalar (cached per view)

    @property
    def chronological(self) -> bool:
        """Entries in the order they were made (otrace's context trees): a listing cut at
        ``limit`` shows the newest."""
        t = type(self.value)
        return _pure.is_trusted(t) and bool(getattr(t, "chronological", False))

    def names(self, limit: int | None = None) -> list[str]:
        """At most ``limit`` names, in the mapping's order (the newest, if chronological).

        Only the ``limit`` names are read, never a copy of all keys: a directory of 100,000
        contexts lists in the time of ``limit`` of them.
        """
        chronological = self.chronological
        if (self.pure and self.trusted) or chronological:
            m = self.value
            newest = chronological and limit is not None and len(m) > limit
            try:  # C-level iteration of otrace's own dict: no other thread runs meanwhile
                keys = list(islice(reversed(m.keys()) if newest else iter(m), limit))  # type: ignore[call-overload]
            except RuntimeError:  # changed size while we looked; look at a copy
                keys = list(islice(reversed(list(m)) if newest else iter(list(m)), limit))
            return self._public([k if isinstance(k, str) else str(k) for k in keys])
        if self.pure:  # dict's own iteration: no overridden __iter__/keys
            try:
                keys = list(islice(dict.keys(self.value), limit))  # type: ignore[arg-type]
            except RuntimeError:  # changed size while we looked (a key's __del__ ran code)
                keys = list(islice(iter(list(dict.keys(self.value))), limit))  # type: ignore[arg-type]
            return self._public([k if type(k) is str else _pure.pure_repr(k, 200) for k in keys])
        try:
            keys = list(islice(iter(list(self.value) if limit is None else self.value), limit))
        except RuntimeError:  # changed size while we looked; look again, once
            keys = list(islice(iter(list(self.value)), limit))
        return [k if isinstance(k, str) else str(k) for k in keys]

    def count(self) -> int | None:
        try:
            return len(self.value)
        except Exception:
            return None

    def get(self, name: str) -> Any:
        m = self.value
        if self.pure and self.trusted:
            self._check_name(name)
            try:
                return m[name]
            except KeyError:
                if name.lstrip("-").isdecimal() and int(name) in m:
                    return m[int(name)]
                raise
        if self.pure:
            self._check_name(name)
            if self._scalar_keys is None:  # one scan per view, not per lookup
                self._scalar_keys = _pure.all_scalar_keys(m)  # type: ignore[arg-type]
            found, value = _pure.dict_lookup(m, name, self._scalar_keys)  # type: ignore[arg-type]
            if not found and name.lstrip("-").isdecimal():
                found, value = _pure.dict_lookup(m, int(name), self._scalar_keys)  # type: ignore[arg-type]
            if not found:
                raise KeyError(name)
            return value
        try:
            return m[name]
        except KeyError:
            pass
        except Exception as exc:
            raise KeyError(name) from exc
        if name.lstrip("-").isdecimal():
            try:
                return m[int(name)]
            except Exception:
                pass
        # keys of other types are listed by str(); find them the same way (bounded scan)
        for key in islice(iter(list(m)), 100_000):
            if not isinstance(key, str) and str(key) == name:
                return m[key]
        raise KeyError(name)

    def set(self, name: str, value: Any) -> None:
        if not isinstance(self.value, MutableMapping):
            raise PathError("this directory is read-only")
        self.value[name] = value

    def delete(self, name: str) -> None:
        if not isinstance(self.value, MutableMapping):
            raise PathError("this directory is read-only")
        del self.value[name]


class SequenceDir(Dir):
    def names(self, limit: int | None = None) -> list[str]:
        n = len(self.value)
        return [str(i) for i in range(n if limit is None else min(n, limit))]

    def count(self) -> int | None:
        return len(self.value)

    def get(self, name: str) -> Any:
        try:
            return self.value[int(name)]
        except (ValueError, IndexError):
            raise KeyError(name) from None

    def set(self, name: str, value: Any) -> None:
        if not isinstance(self.value, list):
            raise PathError("a tuple cannot be changed")
        try:
            self.value[int(name)] = value
        except (ValueError, IndexError):
            raise PathError(f"no item {name!r} (a list directory takes no new names)") from None


class AttrDir(Dir):
    _scalar_keys: bool | None = None  # pure: its __dict__'s keys all scalars (per view)

    def names(self, limit: int | None = None) -> list[str]:
        if self.pure:
            return self._public(_pure.static_names(self.value))[:limit]
        try:
            names = dir(self.value)
        except Exception:
            return []
        return [n for n in names if isinstance(n, str)][:limit]

    def get(self, name: str) -> Any:
        if self.pure:
            self._check_name(name)
            if self._scalar_keys is None:  # one scan per view, not per attribute
                self._scalar_keys = _pure.instance_scalar_keys(self.value)
            try:
                return _pure.static_get(self.value, name, self._scalar_keys)
            except AttributeError:
                raise KeyError(name) from None
        try:
            return getattr(self.value, name)
        except Exception as exc:  # a property that raises is simply "not there"
            raise KeyError(name) from exc

    def set(self, name: str, value: Any) -> None:
        try:
            setattr(self.value, name, value)
        except Exception as exc:
            raise PathError(f"cannot set {name}: {exc}") from None

    def delete(self, name: str) -> None:
        try:
            delattr(self.value, name)
        except Exception as exc:
            raise PathError(f"cannot delete {name}: {exc}") from None


class FsDir(Dir):
    value: FsPath

    def names(self, limit: int | None = None) -> list[str]:
        try:
            names = os.listdir(self.value.path)
        except OSError as exc:
            raise PathError(f"cannot list {self.value.path}: {exc.strerror}") from None
        if self.value.path == "/":
            names.append("osh")
        return self._public(names)[:limit]

    def get(self, name: str) -> Any:
        self._check_name(name)
        path = os.path.join(self.value.path, name)
        if not os.path.lexists(path):
            raise KeyError(name)
        return FsPath(path)


def as_dir(value: Any, pure: bool = False) -> Dir:
    """The directory view of ``value``; PathError for ``None`` (a vanished entry).

    ``pure`` (safe mode): decided by the exact type, never ``isinstance`` (which may ask a
    program's ``__class__``); program mappings and sequences are seen by their attributes,
    and the real filesystem is not browsed.
    """
    if value is None:
        raise PathError("Stale directory (the entry is None or gone)")
    materialise(value)  # a context's frames are built when first read
    if pure:
        t = type(value)
        if t is FsPath:  # names of files, never their contents
            if not value.is_dir():
                raise PathError(f"Not a directory: {value.path}")
            return FsDir(value, True)
        if _pure.is_trusted(t) and isinstance(value, Mapping):  # otrace's own: its code is ours
            d = MappingDir(value, True)
            d.trusted = True
            return d
        if dict in t.__mro__:
            return MappingDir(value, True)
        if t is list or t is tuple:
            return SequenceDir(value, True)
        return AttrDir(value, True)
    t = type(value)  # type(), not isinstance: a program's __class__ may raise or lie
    if t is FsPath:
        if not value.is_dir():
            raise PathError(f"Not a directory: {value.path}")
        return FsDir(value)
    if issubclass(t, Mapping):
        return MappingDir(value)
    if issubclass(t, (list, tuple)):
        return SequenceDir(value)
    return AttrDir(value)


def is_dir_like(value: Any) -> bool:
    """Whether ``cd`` into the value makes sense (anything but None and real files)."""
    if value is None:
        return False
    if type(value) is FsPath:  # type(), not isinstance: a program's __class__ may raise
        return value.is_dir()
    return True


class DirNamespace(MutableMapping):
    """A directory as the ``locals`` of ``eval``/``exec``: names read and write through.

    ``extra`` supplies helper names (``_otrace_value``) without writing them into the
    user's object (the original injected them, which broke lists and mutated objects).
    """

    def __init__(self, d: Dir, extra: dict[str, Any] | None = None):
        self._dir = d
        self._extra = extra or {}

    def __getitem__(self, name: str) -> Any:
        if name in self._extra:
            return self._extra[name]
        try:
            return self._dir.get(name)
        except KeyError as exc:
            cause = exc.__cause__
            if cause is not None and not isinstance(cause, (AttributeError, KeyError)):
                raise cause from None  # show why the property failed, not "not defined"
            raise

    def __setitem__(self, name: str, value: Any) -> None:
        self._dir.set(name, value)

    def __delitem__(self, name: str) -> None:
        self._dir.delete(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._dir.names())

    def __len__(self) -> int:
        return len(self._dir.names())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._extra or self._dir.contains(name))
