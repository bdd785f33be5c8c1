"""Reading ``trace -c`` text: the condition forms, parsed into predicates.

Forms (see :func:`parse_condition`):

* ``""`` -- no condition: the trace records exceptions only (:func:`parse_condition` returns
  None);
* ``call``, ``return``, ``all`` -- every call (context at call), every return (context at
  return, ``tr-return``), or both (context at call, return line too);
* ``tagged`` / ``tagged<arg>`` -- any argument / that argument carries a tag;
* ``name<op>value[,name<op>value...]`` with ops ``== != < <= > >=``, all of which must hold.
  ``name`` is an argument name, ``arg.attr`` (one attribute level), or the pseudo-name
  ``return`` (the return value).  Values: quoted -> str; a leading digit or sign+digit ->
  int (float with ``.``/exponent); ``True``/``False``/``None``; anything else -> str.
  Items are split at commas outside quotes.

The predicates, and how and when they are evaluated, are in :mod:`otrace.tracing.conditions`.
Pure functions; any thread.
"""

from __future__ import annotations

import re
from typing import Any

from otrace.errors import TraceError
from otrace.tracing.conditions import (
    KEYWORDS,
    NUMBER,
    Always,
    And,
    ArgTest,
    Predicate,
    Tagged,
    typed,
)

_ITEM = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)(==|!=|<=|>=|<|>)(.+)$", re.S)


def split_items(text: str) -> list[str]:
    """Split at commas outside quotes; quotes are kept (they make a value a string)."""
    items, buf, quote = [], [], ""
    for ch in text:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            buf.append(ch)
        elif ch == ",":
            items.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
    if quote:
        raise TraceError(f"Invalid trace arg/attr match: unclosed quote in {text}")
    items.append("".join(buf).strip())
    return items


def parse_value(text: str) -> Any:
    """Type a condition value: quoted -> str, numbers, True/False/None, else str."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    value = typed(text)
    if isinstance(value, str) and NUMBER.match(value):
        raise TraceError(f"Invalid trace arg/attr match: bad number {text}")
    return value


MAX_ITEMS = 40  # comparisons in one -c condition


def parse_condition(text: str) -> Predicate | None:
    """Parse ``-c`` text into a predicate (None for no condition).  Raises TraceError."""
    text = (text or "").strip()
    if not text:
        return None
    if text in KEYWORDS:
        return Always(text)
    if text in ("tag", "tagged") or re.fullmatch(r"tagged[A-Za-z_]\w*", text):
        return Tagged("" if text == "tag" else text[len("tagged") :])
    if not any(c in text for c in "=<>"):
        raise TraceError(f"Invalid trace condition {text}")
    tests: list[Predicate] = []
    items = split_items(text)
    if len(items) > MAX_ITEMS:  # each item is one nested test in the compiled call filter
        raise TraceError(f"Trace condition has {len(items)} items; at most {MAX_ITEMS} are allowed")
    for item in items:
        m = _ITEM.match(item)
        if not m:
            raise TraceError(f"Invalid trace arg/attr match: {item}")
        name, op, raw = m.groups()
        if name.startswith("return."):
            raise TraceError(f"Invalid trace arg/attr match: {item} (return takes no attribute)")
        tests.append(ArgTest(name, op, parse_value(raw)))
    return tests[0] if len(tests) == 1 else And(*tests)


def missing_names(pred: Predicate | None, params: set[str], has_varkw: bool) -> list[str]:
    """Argument names used by ``pred`` that the function cannot have (trace-time warning)."""
    if pred is None or has_varkw:
        return []
    return sorted(n for n in pred.names() if n != "return" and n not in params)
