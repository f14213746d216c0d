"""The admin's pages narrowed to the surveys and regions of the user's grants.

The admin checks the model permissions (the named global gate); these mixins add the
grant: lists show only rows of the user's surveys, and changing or deleting a row needs
the administrator's grant for its survey. Superusers see everything.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest

from access.permissions import Capability, filter_by_survey, submissions_for


class SurveyScopedAdmin:
    """Mix into a ModelAdmin before ``admin.ModelAdmin``. ``survey_path`` leads from the
    model to its survey ("pk" for Survey itself)."""

    survey_path = "survey"
    view_capability = Capability.VIEW_SURVEY
    change_capability = Capability.MANAGE_SURVEY

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        return filter_by_survey(queryset, request.user, self.view_capability, self.survey_path)

    def _in_scope(self, request: HttpRequest, obj: Any, capability: Capability) -> bool:
        model = type(obj)
        rows = model._default_manager.filter(pk=obj.pk)
        return filter_by_survey(rows, request.user, capability, self.survey_path).exists()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)  # type: ignore[misc]
        if not allowed or obj is None or obj.pk is None:
            return bool(allowed)
        return self._in_scope(request, obj, self.change_capability)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_delete_permission(request, obj)  # type: ignore[misc]
        if not allowed or obj is None or obj.pk is None:
            return bool(allowed)
        return self._in_scope(request, obj, self.change_capability)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        """A new row can only be put in a survey (or wave) the user administers."""
        from surveys.models import Survey, Wave

        if db_field.related_model is Survey:
            kwargs["queryset"] = filter_by_survey(
                Survey.objects.all(), request.user, self.change_capability, "pk"
            )
        elif db_field.related_model is Wave:
            kwargs["queryset"] = filter_by_survey(
                Wave.objects.select_related("survey"), request.user, self.change_capability
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]


class ReviewScopedAdmin:
    """Interviews: administrators see their surveys', supervisors their regions'."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        return submissions_for(request.user, Capability.REVIEW_SUBMISSIONS, queryset)

    def _in_scope(self, request: HttpRequest, obj: Any) -> bool:
        rows = type(obj)._default_manager.filter(pk=obj.pk)
        return submissions_for(request.user, Capability.REVIEW_SUBMISSIONS, rows).exists()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)  # type: ignore[misc]
        if not allowed or obj is None:
            return bool(allowed)
        return self._in_scope(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_delete_permission(request, obj)  # type: ignore[misc]
        if not allowed or obj is None:
            return bool(allowed)
        return self._in_scope(request, obj)
