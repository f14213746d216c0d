"""Writing the audit trail. Call `record` inside the transaction of the change it describes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models

from audit.models import AuditAction, AuditEvent


def record(
    *,
    actor: Any,
    action: AuditAction | str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: Any = "",
    survey_id: int | None = None,
    old: Any = None,
    new: Any = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. ``actor`` is a user, an anonymous user or None (the system)."""
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}")
    user = actor if getattr(actor, "is_authenticated", False) else None
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    return AuditEvent.objects.create(
        actor=user,
        actor_name=user.get_username() if user is not None else "",
        action=str(action),
        object_type=object_type,
        object_id=str(object_id)[:64],
        object_repr=str(obj)[:200] if obj is not None else "",
        survey_id=survey_id,
        old=old,
        new=new,
        detail=detail or {},
    )


def ids(objects: Iterable[Any]) -> list[Any]:
    """Primary keys of objects (or the values themselves), sorted, for an event's detail."""
    return sorted(getattr(o, "pk", o) for o in objects)
