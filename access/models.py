"""Role grants: which user holds which role in which survey and, for supervisors, regions.

The role groups of `surveys.roles` hold the global permissions (the coarse gate: a
researcher needs ``surveys.view_estimates`` at all); a grant narrows them to one survey
and, for a supervisor, to regions. A group member without a grant sees no survey.
Superusers need no grant. Grants are made and withdrawn through `access.services`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrator")
    RESEARCHER = "researcher", _("Researcher")
    SUPERVISOR = "supervisor", _("Supervisor")
    ENUMERATOR = "enumerator", _("Enumerator")


class Level(models.TextChoices):
    """How far a researcher's grant reaches; other roles have no level."""

    NONE = "", _("(not a researcher)")
    AGGREGATES = "aggregates", _("Aggregated estimates only")
    MICRODATA = "microdata", _("Estimates and microdata")


class RoleGrant(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="role_grants",
        verbose_name=_("user"),
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    # An administrator's grant may name no survey: then it covers every survey.
    survey = models.ForeignKey(
        "surveys.Survey",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="role_grants",
        verbose_name=_("survey"),
    )
    level = models.CharField(_("level"), max_length=16, choices=Level.choices, blank=True)
    regions = models.ManyToManyField(
        "surveys.Region",
        through="RoleGrantRegion",
        blank=True,
        related_name="+",
        verbose_name=_("regions"),
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("granted by"),
    )
    granted_at = models.DateTimeField(_("granted"), auto_now_add=True)

    class Meta:
        ordering = ["user__username", "role", "survey__code"]
        verbose_name = _("role grant")
        verbose_name_plural = _("role grants")
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["admin", "researcher", "supervisor", "enumerator"]),
                name="grant_role_valid",
            ),
            models.CheckConstraint(
                condition=Q(role="admin") | Q(survey__isnull=False),
                name="grant_survey_required",
            ),
            models.CheckConstraint(
                condition=Q(role="researcher", level__in=["aggregates", "microdata"])
                | (~Q(role="researcher") & Q(level="")),
                name="grant_level_researchers_only",
            ),
            # One grant of a role per user and survey (a researcher holds one level).
            models.UniqueConstraint(
                fields=["user", "role", "survey"],
                condition=Q(survey__isnull=False),
                name="grant_unique_per_survey",
            ),
            models.UniqueConstraint(
                fields=["user", "role"],
                condition=Q(survey__isnull=True),
                name="grant_unique_platform_wide",
            ),
        ]

    def __str__(self) -> str:
        where = self.survey.code if self.survey_id and self.survey else _("all surveys")
        level = f" ({self.get_level_display()})" if self.level else ""
        return f"{self.user} · {self.get_role_display()}{level} · {where}"


class RoleGrantRegion(models.Model):
    """A region a supervisor's grant covers (supervisors only: `access.services` checks)."""

    grant = models.ForeignKey(RoleGrant, on_delete=models.CASCADE, related_name="grant_regions")
    region = models.ForeignKey("surveys.Region", on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("region of a grant")
        verbose_name_plural = _("regions of grants")
        constraints = [
            models.UniqueConstraint(fields=["grant", "region"], name="grant_region_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.grant_id}: {self.region_id}"
