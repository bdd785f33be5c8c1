"""Trace conditions as small predicates that compose and print themselves.

A condition is typed at ``trace -c`` (read by :mod:`otrace.tracing.condition_parse`, which
lists its forms) or built from these classes.

Evaluation time: a condition naming ``return`` is evaluated at return, with its argument
items and the return value together (its argument items still filter early at call time);
otherwise at call.  The ``tag`` action moves evaluation to return.

**Missing arguments (a documented choice):** the original treated an item naming an argument
or attribute that does not exist as satisfied, so ``-c nosuch==1`` matched every call.  Here
it is **no match**: ``parse_condition`` callers get a warning at trace time when the name is
not a parameter of the traced function (see ``condition_parse.missing_names``), and at call
time the miss is recorded on the trace spec like any other evaluation error.

Evaluation errors (a raising ``__eq__``, ``TypeError`` from ordering unrelated types, a
missing attribute) mean *no match*; the tracing engine records the error on the spec.

Predicates are plain objects: ``match(call)`` returns the label of the match (used in the
trace id, e.g. ``name==apple,qty>=2``) or None; ``render()`` gives the text typed at ``-c``;
``&``, ``|`` and ``~`` compose them (in the style of python-hunter's predicates).  Thread
safety: predicates are immutable; evaluate them from any thread.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any, Protocol

from otrace.errors import TraceError

OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
KEYWORDS = ("call", "return", "all")
NUMBER = re.compile(r"^[+-]?\d")
_TAG_ATTR = "_otrace_tag"


class ConditionError(Exception):
    """A condition could not be evaluated for this call (counts as no match)."""


class CallView(Protocol):
    """What a predicate may ask about a call (the engine's per-call object)."""

    def value_of(self, name: str) -> Any: ...

    def arguments(self) -> dict[str, Any]: ...

    def flat_arguments(self) -> list[tuple[str, Any]]: ...


def _always(args: tuple, kwargs: dict) -> bool:
    return True


class Predicate:
    """Base: ``match(call) -> label | None``; composes with ``&``, ``|``, ``~``."""

    uses_return = False

    def match(self, call: CallView) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def render(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def quick(self, params: dict[str, tuple]) -> Callable[[tuple, dict], bool]:
        """A fast ``(args, kwargs) -> might match`` filter for a function's parameters.

        ``params`` maps argument names to ``(index or None, keyword or None, default)``.
        False means "certainly no match"; True means "evaluate fully".  Never raises.
        """
        return _always

    def names(self) -> set[str]:
        """Argument names the predicate reads (``return`` included)."""
        return set()

    def __call__(self, call: CallView) -> bool:
        return self.match(call) is not None

    def __and__(self, other: Predicate) -> Predicate:
        return And(self, other)

    def __or__(self, other: Predicate) -> Predicate:
        return Or(self, other)

    def __invert__(self) -> Predicate:
        return Not(self)

    def __str__(self) -> str:
        return self.render()


class Always(Predicate):
    """Matches every call; ``word`` is ``call``, ``return`` or ``all``."""

    def __init__(self, word: str = "call") -> None:
        if word not in KEYWORDS:
            raise TraceError(
                f"Invalid trace condition {word}: expected one of {', '.join(KEYWORDS)}"
            )
        self.word = word
        self.uses_return = word == "return"

    def match(self, call: CallView) -> str | None:
        return "return" if self.word == "return" else "call"

    def render(self) -> str:
        return self.word

    def __repr__(self) -> str:
        return f"Always({self.word!r})"


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        if value == "" or re.search(r"[\s,'\"]", value) or typed(value) is not value:
            return repr(value)
        return value
    return repr(value)


class ArgTest(Predicate):
    """``name<op>value``: compare an argument (or ``arg.attr``, or ``return``) to a value."""

    def __init__(self, name: str, op: str, value: Any) -> None:
        if op not in OPS:
            raise TraceError(f"Invalid operator {op!r}: expected one of {' '.join(OPS)}")
        self.arg, _, self.attr = name.partition(".")
        self.name = name
        self.op = op
        self.value = value
        self._op = OPS[op]
        self.uses_return = self.arg == "return"

    def names(self) -> set[str]:
        return {self.arg}

    def match(self, call: CallView) -> str | None:
        value = call.value_of(self.arg)
        if self.attr:
            try:
                value = getattr(value, self.attr)
            except AttributeError:
                raise ConditionError(f"{self.arg} has no attribute {self.attr!r}") from None
        return self.render() if self._op(value, self.value) else None

    def quick(self, params: dict[str, tuple]) -> Callable[[tuple, dict], bool]:
        if self.attr or self.uses_return or self.arg not in params:
            return _always
        index, keyword, default = params[self.arg]
        op, expected = self._op, self.value

        if index is None:

            def test(args: tuple, kwargs: dict) -> bool:
                try:
                    return bool(op(kwargs.get(keyword, default), expected))
                except Exception:
                    return True
        elif keyword is None:

            def test(args: tuple, kwargs: dict) -> bool:
                try:
                    return bool(op(args[index] if len(args) > index else default, expected))
                except Exception:
                    return True
        else:

            def test(args: tuple, kwargs: dict) -> bool:
                try:
                    return bool(
                        op(
                            args[index] if len(args) > index else kwargs.get(keyword, default),
                            expected,
                        )
                    )
                except Exception:
                    return True

        return test

    def render(self) -> str:
        return f"{self.name}{self.op}{_value_text(self.value)}"

    def __repr__(self) -> str:
        return f"ArgTest({self.name!r}, {self.op!r}, {self.value!r})"


def get_tag(obj: Any) -> str | None:
    """The trace id an object is tagged with, or None (never raises)."""
    try:
        value = getattr(obj, _TAG_ATTR, None)
    except Exception:
        return None
    return value if isinstance(value, str) else None


class Tagged(Predicate):
    """``tagged`` (any argument) or ``tagged<arg>``: the argument carries a tag."""

    def __init__(self, arg: str = "") -> None:
        self.arg = arg

    def names(self) -> set[str]:
        return {self.arg} if self.arg else set()

    def match(self, call: CallView) -> str | None:
        if self.arg:
            candidates = [(self.arg, call.value_of(self.arg))]
        else:
            candidates = call.flat_arguments()
        for name, value in candidates:
            tag = get_tag(value)
            if tag:
                parts = tag.split(":")
                ctxid = parts[1] if len(parts) == 3 else tag
                return f"tagged{name};{ctxid}"
        return None

    def render(self) -> str:
        return "tagged" + self.arg

    def __repr__(self) -> str:
        return f"Tagged({self.arg!r})"


class And(Predicate):
    """All of its parts match; the label is their labels, sorted, joined by ``,``."""

    def __init__(self, *parts: Predicate) -> None:
        flat: list[Predicate] = []
        for part in parts:
            flat.extend(part.parts if isinstance(part, And) else [part])
        self.parts: tuple[Predicate, ...] = tuple(flat)
        self.uses_return = any(p.uses_return for p in self.parts)

    def names(self) -> set[str]:
        return set().union(*(p.names() for p in self.parts))

    def match(self, call: CallView) -> str | None:
        labels = []
        for part in self.parts:
            label = part.match(call)
            if label is None:
                return None
            labels.append(label)
        return ",".join(sorted(labels))

    def quick(self, params: dict[str, tuple]) -> Callable[[tuple, dict], bool]:
        tests = [t for t in (p.quick(params) for p in self.parts) if t is not _always]
        if not tests:
            return _always
        if len(tests) == 1:
            return tests[0]
        if len(tests) == 2:
            first, second = tests
            return lambda args, kwargs: first(args, kwargs) and second(args, kwargs)
        return lambda args, kwargs: all(t(args, kwargs) for t in tests)

    def render(self) -> str:
        return ",".join(p.render() for p in self.parts)

    def __repr__(self) -> str:
        return f"And({', '.join(repr(p) for p in self.parts)})"


class Or(Predicate):
    """Any of its parts matches (API only; the command line has no syntax for it)."""

    def __init__(self, *parts: Predicate) -> None:
        self.parts = parts
        self.uses_return = any(p.uses_return for p in parts)

    def names(self) -> set[str]:
        return set().union(*(p.names() for p in self.parts))

    def match(self, call: CallView) -> str | None:
        for part in self.parts:
            label = part.match(call)
            if label is not None:
                return label
        return None

    def render(self) -> str:
        return " | ".join(p.render() for p in self.parts)

    def __repr__(self) -> str:
        return f"Or({', '.join(repr(p) for p in self.parts)})"


class Not(Predicate):
    """Its part does not match (API only)."""

    def __init__(self, part: Predicate) -> None:
        self.part = part
        self.uses_return = part.uses_return

    def names(self) -> set[str]:
        return self.part.names()

    def match(self, call: CallView) -> str | None:
        return None if self.part.match(call) is not None else "not(" + self.part.render() + ")"

    def render(self) -> str:
        return "~" + self.part.render()

    def __repr__(self) -> str:
        return f"Not({self.part!r})"


def typed(text: str) -> Any:
    """A condition value's text typed: True/False/None, numbers, else the text itself."""
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    if NUMBER.match(text):
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            return text
    return text
