"""Read-only API of the survey reference data: surveys, waves, regions, questionnaire versions.

Readers need the researcher permission `surveys.view_estimates` (token or session) and a
grant in the survey (`access.permissions`): each sees the surveys, waves and questionnaire
versions of their own surveys; regions are reference data, the same for everyone.
"""

from __future__ import annotations

import django_filters
from rest_framework import viewsets

from access.permissions import Capability, HasCapability, filter_by_survey
from surveys.models import FormVersion, Geography, Region, Survey, Wave
from surveys.serializers import (
    FormVersionDetailOutputSerializer,
    FormVersionOutputSerializer,
    RegionOutputSerializer,
    SurveyOutputSerializer,
    WaveOutputSerializer,
)


class CanViewEstimates(HasCapability):
    """Researchers (and supervisors): `surveys.view_estimates` and a grant in the survey."""

    capability = Capability.VIEW_ESTIMATES
    message = "You need the permission to view estimates of this survey."


class InGrantedSurveys:
    """A viewset mixin: ``survey_field`` narrows the queryset to the user's surveys."""

    survey_field = "survey"

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = super().get_queryset()  # type: ignore[misc]
        return filter_by_survey(
            queryset,
            self.request.user,  # type: ignore[attr-defined]
            Capability.VIEW_ESTIMATES,
            self.survey_field,
        )


class SurveyViewSet(InGrantedSurveys, viewsets.ReadOnlyModelViewSet):
    survey_field = "pk"
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


class WaveViewSet(InGrantedSurveys, viewsets.ReadOnlyModelViewSet):
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


class FormVersionViewSet(InGrantedSurveys, viewsets.ReadOnlyModelViewSet):
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
