"""Object tags: an object's ``_otrace_tag`` attribute holds the id of a ``tags`` context.

``tag(obj)`` creates the context ``<Class>:tg-<label>:<ts>`` (containing ``self`` = the object
plus any extra values), sets the attribute and announces the id; ``trace -c tagged...``
then follows the object through traced calls.  With ``save_tags`` the context is also saved.
Any thread may call these functions.
"""

from __future__ import annotations

from typing import Any

from otrace import _default
from otrace.contexts.record import TraceContext, new_timestamp
from otrace.contexts.safe import safe_str
from otrace.errors import TraceError
from otrace.tracing.conditions import get_tag

TAG_ATTR = "_otrace_tag"

__all__ = ["TAG_ATTR", "get_tag", "set_tag", "tag", "untag"]


def tag(obj: Any, label: str = "id", /, _recorder: Any = None, **extra: Any) -> str:
    """Tag ``obj``; returns the new trace id.

    ``label``: ``"id"`` -> ``0x<hex id>``, ``"time"`` -> a fresh timestamp, anything else
    -> that text.  ``extra`` values are stored in the context next to ``self``.  The context is
    recorded by ``_recorder`` (a runtime's :class:`~otrace.recorder.Recorder`; default: the
    default runtime's).
    Raises TraceError when the object takes no attributes.
    """
    if label == "id":
        label = f"0x{id(obj):x}"
    elif label == "time":
        label = new_timestamp()
    # type(), not isinstance: a program's __class__ may raise
    cls_name = obj.__name__ if issubclass(type(obj), type) else type(obj).__name__
    values = {"self": obj, **{k: v for k, v in extra.items() if k != "self"}}
    recorder = _recorder if _recorder is not None else _default.get().recorder

    def attach(ctx: TraceContext) -> None:
        try:
            setattr(obj, TAG_ATTR, ctx.id)
        except (AttributeError, TypeError):
            raise TraceError(
                f"Cannot tag a {type(obj).__name__}: it takes no attributes "
                "(tags go on objects of your own classes)"
            ) from None
        except Exception as exc:
            raise TraceError(f"Error in tag: {type(exc).__name__}: {safe_str(exc, 200)}") from None

    ctx, _ = recorder.record(
        "tags",
        cls_name,
        label,
        values,
        prepare=attach,
        save=recorder.params.save_tags,
        say=[lambda c: c.id],
        truncate=False,
    )
    return ctx.id


def untag(obj: Any) -> None:
    """Remove the tag; TraceError if there is none."""
    try:
        delattr(obj, TAG_ATTR)
    except Exception as exc:
        raise TraceError(f"Error in untag: {type(exc).__name__}: {exc}") from None


def set_tag(obj: Any, value: str | None) -> None:
    """Set the tag attribute to ``value`` (a trace id); None removes it (silently)."""
    if value is None:
        try:
            delattr(obj, TAG_ATTR)
        except Exception:
            pass
        return
    try:
        setattr(obj, TAG_ATTR, value)
    except Exception as exc:
        raise TraceError(f"Error in tag: {type(exc).__name__}: {exc}") from None
