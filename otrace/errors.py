"""The error classes a user of otrace sees.

A command that fails because of what the operator typed raises an :class:`OTraceError`
subclass; the shell shows its message as one line and carries on.  Anything else escaping a
command is a bug in otrace and is shown with a traceback (the shell still carries on).
"""

from __future__ import annotations


class OTraceError(Exception):
    """Base of every error meant to be shown to the operator as one line."""


# The original's public name; kept so code written against it still imports.
OTraceException = OTraceError


class UsageError(OTraceError):
    """A command was called with words it does not accept."""


class PathError(OTraceError):
    """A path does not exist, is ambiguous, or cannot be entered."""


class SafeModeError(OTraceError):
    """The command or expression is refused while ``safe_mode`` is on."""


class ParamError(OTraceError):
    """A ``set`` parameter is unknown or its value does not convert."""


class TraceError(OTraceError):
    """A trace target or condition is invalid."""


class PatchError(OTraceError):
    """A live patch could not be made or undone."""


class StoreError(OTraceError):
    """A pickle database could not be opened, read or written."""
