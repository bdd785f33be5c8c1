"""Names the tests use for the current test's runtime (see tests/conftest.py).

``STORE``, ``PARAMS`` and ``PATCHES`` forward to the default runtime's store, parameters and
patch table, which the root conftest replaces with a fresh :class:`otrace.runtime.Runtime` for
every test -- so a test module can import them once and still see its own test's runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otrace.runtime import default


class _Forward:
    def __init__(self, target: Callable[[], Any]) -> None:
        object.__setattr__(self, "_target", target)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target(), name, value)

    def __getitem__(self, key: Any) -> Any:
        return self._target()[key]

    def __contains__(self, key: Any) -> bool:
        return key in self._target()

    def __iter__(self) -> Any:
        return iter(self._target())

    def __len__(self) -> int:
        return len(self._target())

    def __eq__(self, other: object) -> bool:
        return bool(self._target() == other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._target())


STORE: Any = _Forward(lambda: default().store)
PARAMS: Any = _Forward(lambda: default().params)
PATCHES: Any = _Forward(lambda: default().patches.patches)
