"""The audit trail: an append-only record of who did what, when, to which object.

Services write an event in the same transaction as the change it records, so a change
that rolls back leaves no event and an event never describes a change that did not happen.
The application never updates or deletes events: the queryset refuses it, and on
PostgreSQL a trigger refuses UPDATE and DELETE on the table itself (see the migration).
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    """Every kind of recorded event. A service that records a new kind adds it here."""

    INTERVIEWS_DELETED = "interviews.deleted", _("Interviews deleted")
    INTERVIEWS_REVIEWED = "interviews.reviewed", _("Interviews reviewed")
    FORM_UPLOADED = "form.uploaded", _("Questionnaire uploaded")
    LINKS_CREATED = "links.created", _("Survey links created")
    LINKS_REVOKED = "links.revoked", _("Survey links revoked")
    MICRODATA_DOWNLOADED = "microdata.downloaded", _("Microdata downloaded")
    REGIONAL_DOWNLOADED = "regional.downloaded", _("Regional table downloaded")
    EXPORT_REQUESTED = "export.requested", _("Export requested")
    ROLE_GRANTED = "role.granted", _("Role granted")
    ROLE_REVOKED = "role.revoked", _("Role revoked")
    TOKEN_ISSUED = "token.issued", _("Access token issued")
    TOKEN_REVOKED = "token.revoked", _("Access token revoked")
    DEVICE_ENROLLED = "device.enrolled", _("Device enrolled")
    DEVICE_REVOKED = "device.revoked", _("Device revoked")
    ASSIGNMENTS_CHANGED = "assignments.changed", _("Assignments changed")
    MARGINS_SAVED = "margins.saved", _("Population margins saved")


class AppendOnly(Exception):
    """Raised when code tries to change or remove a recorded event."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnly("audit events are never changed")

    def delete(self) -> NoReturn:  # type: ignore[override]
        raise AppendOnly("audit events are never deleted")


class AuditEvent(models.Model):
    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    # The actor's id and name are kept as they were: deleting a user leaves the trail whole.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("who"),
    )
    actor_name = models.CharField(_("who (as recorded)"), max_length=150, blank=True)
    action = models.CharField(_("what"), max_length=48, choices=AuditAction.choices)
    object_type = models.CharField(_("object type"), max_length=64, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    survey_id = models.BigIntegerField(_("survey id"), null=True, blank=True, db_index=True)
    old = models.JSONField(_("old value"), null=True, blank=True)
    new = models.JSONField(_("new value"), null=True, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [models.Index(fields=["action", "at"], name="audit_action_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnly("audit events are never changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnly("audit events are never deleted")
