"""The enumerators' channel: tablets (devices), enrolment codes, assignments and the
paradata of each tablet interview.

A device's token is a high-entropy secret shown once at enrolment; only its sha256 is
kept, with a short prefix to find the row. An interview collected on a tablet is an
ordinary `surveys.Submission` (channel ``tablet``); `TabletInterview` adds what only the
tablet knows: the device, the assignment it was done for, its paradata and whether it
arrived over its assignment's quota (stored and flagged, never dropped).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

UNLIMITED = -1
DEFAULT_GPS_DISTANCE_KM = 10.0


class Device(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    enumerator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="devices",
        verbose_name=_("enumerator"),
    )
    label = models.CharField(_("label"), max_length=100, blank=True)
    token_prefix = models.CharField(_("token prefix"), max_length=12, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    app_version = models.CharField(_("app version"), max_length=32, blank=True)
    created_at = models.DateTimeField(_("enrolled"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("device")
        verbose_name_plural = _("devices")

    def __str__(self) -> str:
        return f"{self.label or self.token_prefix} ({self.enumerator})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class EnrolmentCode(models.Model):
    """A short single-use code (also shown as a QR code) that enrols one tablet."""

    enumerator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="enrolment_codes",
        verbose_name=_("enumerator"),
    )
    code_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    used_at = models.DateTimeField(_("used"), null=True, blank=True)
    device = models.OneToOneField(
        Device, on_delete=models.PROTECT, null=True, blank=True, related_name="enrolment_code"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("enrolment code")
        verbose_name_plural = _("enrolment codes")

    def __str__(self) -> str:
        return f"{self.enumerator} ({self.created_at:%Y-%m-%d %H:%M})"


class AssignmentQuerySet(models.QuerySet["Assignment"]):
    def with_progress(self) -> AssignmentQuerySet:
        """Each assignment with ``n_done`` (interviews not rejected) and ``n_accepted``."""
        return self.annotate(
            n_done=models.Count(
                "interviews", filter=~Q(interviews__submission__review_status="rejected")
            ),
            n_accepted=models.Count(
                "interviews", filter=Q(interviews__submission__review_status="approved")
            ),
        )


class Assignment(models.Model):
    """Work given to one enumerator: where to interview, how many, with which form."""

    enumerator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="assignments",
        verbose_name=_("enumerator"),
    )
    wave = models.ForeignKey(
        "surveys.Wave", on_delete=models.PROTECT, related_name="assignments", verbose_name=_("wave")
    )
    form_version = models.ForeignKey(
        "surveys.FormVersion",
        on_delete=models.PROTECT,
        related_name="assignments",
        verbose_name=_("questionnaire version"),
    )
    region = models.ForeignKey(
        "surveys.Region",
        on_delete=models.PROTECT,
        related_name="assignments",
        verbose_name=_("region"),
    )
    settlement = models.CharField(_("settlement"), max_length=128, blank=True)
    psu = models.CharField(_("PSU"), max_length=64, blank=True)
    stratum = models.CharField(_("stratum"), max_length=64, blank=True)
    # Where the settlement is (decimal degrees, WGS 84): optional; with the survey's GPS on,
    # an interview recorded far from it is flagged for the supervisor.
    latitude = models.FloatField(
        _("settlement latitude"),
        null=True,
        blank=True,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )
    longitude = models.FloatField(
        _("settlement longitude"),
        null=True,
        blank=True,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )
    quota = models.IntegerField(_("quota"), default=UNLIMITED, help_text=_("-1: unlimited"))
    prefilled = models.JSONField(_("prefilled design answers"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["wave", "enumerator", "region", "settlement", "id"]
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        constraints = [
            models.CheckConstraint(
                condition=Q(quota__gte=UNLIMITED), name="assignment_quota_valid"
            ),
            models.CheckConstraint(
                condition=(Q(latitude__isnull=True) & Q(longitude__isnull=True))
                | (
                    Q(latitude__gte=-90, latitude__lte=90)
                    & Q(longitude__gte=-180, longitude__lte=180)
                ),
                name="assignment_coordinates_valid",
            ),
        ]

    def __str__(self) -> str:
        place = self.settlement or self.psu or self.region.code
        return f"{self.wave} · {self.enumerator} · {place}"

    @property
    def is_unlimited(self) -> bool:
        return self.quota == UNLIMITED

    @property
    def coordinates(self) -> tuple[float, float] | None:
        if self.latitude is None or self.longitude is None:
            return None
        return (self.latitude, self.longitude)


class TabletInterview(models.Model):
    """What the tablet adds to an interview: device, assignment, paradata, quota flag.

    Paradata never holds an IP address or a user agent string (the app sends neither and
    the sync service keeps only the known keys).
    """

    submission = models.OneToOneField(
        "surveys.Submission",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="tablet",
    )
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="interviews")
    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="interviews")
    paradata = models.JSONField(_("paradata"), default=dict)
    over_quota = models.BooleanField(_("over quota"), default=False)

    class Meta:
        verbose_name = _("tablet interview")
        verbose_name_plural = _("tablet interviews")
        # (the assignment's foreign key has its index: a second one would only cost writes)

    def __str__(self) -> str:
        return str(self.submission_id)


class CollectSettings(models.Model):
    """A survey's settings for tablet fieldwork. GPS is off unless a survey turns it on:
    the topic is sensitive, and a location can identify a respondent."""

    survey = models.OneToOneField(
        "surveys.Survey", on_delete=models.CASCADE, related_name="collect_settings"
    )
    record_gps = models.BooleanField(_("record GPS location"), default=False)
    gps_distance_km = models.FloatField(
        _("GPS distance limit (km)"),
        default=DEFAULT_GPS_DISTANCE_KM,
        validators=[MinValueValidator(0.1)],
        help_text=_(
            "An interview recorded farther than this from its assignment's settlement is "
            "flagged for review."
        ),
    )

    class Meta:
        verbose_name = _("tablet fieldwork settings")
        verbose_name_plural = _("tablet fieldwork settings")

    def __str__(self) -> str:
        return str(self.survey)
