"""Read-only API of the survey reference data: surveys, waves, regions, questionnaire versions.

Readers need the researcher permission `surveys.view_estimates` (token or session).
"""

from __future__ import annotations

import django_filters
from rest_framework import permissions, viewsets

from surveys.models import FormVersion, Geography, Region, Survey, Wave
from surveys.serializers import (
    FormVersionDetailOutputSerializer,
    FormVersionOutputSerializer,
    RegionOutputSerializer,
    SurveyOutputSerializer,
    WaveOutputSerializer,
)


class CanViewEstimates(permissions.BasePermission):
    """Researchers (and supervisors): the `surveys.view_estimates` permission."""

    message = "You need the permission to view estimates."

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("surveys.view_estimates"))


class SurveyViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Survey.objects.order_by("code")
    serializer_class = SurveyOutputSerializer
    permission_classes = [CanViewEstimates]
    filterset_fields = ["code"]


class WaveFilter(django_filters.FilterSet):
    survey = django_filters.CharFilter(field_name="survey__code")
    geography = django_filters.ChoiceFilter(choices=Geography.choices)

    class Meta:
        model = Wave
        fields = ["survey", "geography", "code", "is_open", "is_synthetic"]


class WaveViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Wave.objects.select_related("survey", "form_version").order_by(
        "survey__code", "code"
    )
    serializer_class = WaveOutputSerializer
    permission_classes = [CanViewEstimates]
    filterset_class = WaveFilter


class RegionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Region.objects.select_related("unit_2013").order_by("geography", "code")
    serializer_class = RegionOutputSerializer
    permission_classes = [CanViewEstimates]
    filterset_fields = ["geography", "code", "kind"]


class FormVersionFilter(django_filters.FilterSet):
    survey = django_filters.CharFilter(field_name="survey__code")

    class Meta:
        model = FormVersion
        fields = ["survey", "version"]


class FormVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Questionnaire versions; the detail view includes the compiled definition."""

    queryset = FormVersion.objects.select_related("survey").order_by("survey__code", "-created_at")
    permission_classes = [CanViewEstimates]
    filterset_class = FormVersionFilter

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = super().get_queryset()
        if self.action == "list":
            # The definition is large; the list does not read it.
            return queryset.defer("definition", "import_warnings")
        return queryset

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        if self.action == "retrieve":
            return FormVersionDetailOutputSerializer
        return FormVersionOutputSerializer
