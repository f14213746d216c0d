"""Analytics API: indicator estimates, the regional comparison table and export jobs.

Estimates and the comparison table need `surveys.view_estimates`; microdata and codebook
export jobs need `surveys.export_microdata` as well; both only for the surveys the user
holds a grant in (microdata: at the microdata level, `access.permissions`). A user sees
only their own jobs. Every file sent records who downloaded which waves (`audit`).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from access import permissions as access
from analytics import exports
from analytics.breakdowns import BREAKDOWNS
from analytics.downloads import (
    breakdown_download_response,
    export_file_response,
    regional_download_response,
)
from analytics.models import BreakdownEstimate, ExportJob, IndicatorEstimate
from analytics.selectors import comparison_estimates
from analytics.serializers import (
    ID_MAX,
    ID_MIN,
    BreakdownEstimateOutputSerializer,
    ComparisonQueryInputSerializer,
    ComparisonRowOutputSerializer,
    EstimateOutputSerializer,
    ExportJobInputSerializer,
    ExportJobOutputSerializer,
)
from config.schema import NO_NUL_PATTERN, ErrorOutputSerializer
from surveys.api import CanViewEstimates
from surveys.models import Geography


class IntegerFilter(django_filters.NumberFilter):
    """A whole number (NumberFilter reads decimals: ``wave=0.5`` would filter on it)."""

    field_class = forms.IntegerField


class EstimateFilter(django_filters.FilterSet):
    survey = django_filters.CharFilter(field_name="wave__survey__code")
    wave = IntegerFilter(field_name="wave_id", min_value=ID_MIN, max_value=ID_MAX)
    wave_code = django_filters.CharFilter(field_name="wave__code")
    region = django_filters.CharFilter(method="filter_region", label="ISO code, or KZ for national")
    indicator = django_filters.CharFilter(field_name="indicator")
    geography = django_filters.ChoiceFilter(choices=Geography.choices)
    suppressed = django_filters.BooleanFilter()

    class Meta:
        model = IndicatorEstimate
        fields = ["survey", "wave", "wave_code", "region", "indicator", "geography", "suppressed"]

    def filter_region(self, queryset, name, value):  # type: ignore[no-untyped-def]
        if value.upper() == "KZ":
            return queryset.filter(region__isnull=True)
        return queryset.filter(region__code=value)


# A 64-bit integer query parameter, as the schema states it (larger ones are refused).
ID_SCHEMA = {"type": "integer", "format": "int64", "minimum": ID_MIN, "maximum": ID_MAX}


@extend_schema_view(list=extend_schema(parameters=[OpenApiParameter("wave", ID_SCHEMA)]))
class EstimateViewSet(viewsets.ReadOnlyModelViewSet):
    """Current indicator estimates (the published result set of each wave)."""

    serializer_class = EstimateOutputSerializer
    permission_classes = [CanViewEstimates]
    filterset_class = EstimateFilter

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return access.filter_by_survey(
            IndicatorEstimate.objects.current()
            .select_related("wave__survey", "region", "previous_wave")
            .order_by("wave__survey__code", "wave__code", "geography", "indicator", "region__code"),
            self.request.user,
            access.Capability.VIEW_ESTIMATES,
            "wave__survey",
        )


# A downloaded file: bytes, except JSON, which a client reads as JSON.
FILE_SCHEMA = {
    fmt: OpenApiTypes.ANY if fmt == "json" else OpenApiTypes.BINARY for fmt in exports.CONTENT_TYPES
}


class BreakdownEstimateFilter(EstimateFilter):
    breakdown = django_filters.ChoiceFilter(choices=[(b.key, b.key) for b in BREAKDOWNS])
    group = django_filters.CharFilter(field_name="group")

    class Meta:
        model = BreakdownEstimate
        fields = [*EstimateFilter.Meta.fields, "breakdown", "group"]


@extend_schema_view(list=extend_schema(parameters=[OpenApiParameter("wave", ID_SCHEMA)]))
class BreakdownEstimateViewSet(viewsets.ReadOnlyModelViewSet):
    """Current estimates by breakdown (sex, age band, urban/rural, education, employment,
    settlement type): each group nationally (``region=KZ``) and within regions."""

    serializer_class = BreakdownEstimateOutputSerializer
    permission_classes = [CanViewEstimates]
    filterset_class = BreakdownEstimateFilter

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return access.filter_by_survey(
            BreakdownEstimate.objects.current()
            .select_related("wave__survey", "region", "previous_wave")
            .order_by(
                "wave__survey__code",
                "wave__code",
                "breakdown",
                "indicator",
                "region__code",
                "group",
            ),
            self.request.user,
            access.Capability.VIEW_ESTIMATES,
            "wave__survey",
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "file_format", OpenApiTypes.STR, enum=list(exports.REGIONAL_FORMATS), required=True
            ),
        ],
        responses={
            (200, exports.CONTENT_TYPES[fmt].split(";")[0]): FILE_SCHEMA[fmt]
            for fmt in exports.REGIONAL_FORMATS
        },
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def download(self, request: Request, **kwargs: str) -> HttpResponse:
        """The filtered breakdown cells as a table: csv, xlsx, json or parquet."""
        file_format = request.query_params.get("file_format", "")
        if file_format not in exports.REGIONAL_FORMATS:
            raise ValidationError({"file_format": [_("Choose csv, xlsx, json or parquet.")]})
        estimates = self.filter_queryset(self.get_queryset())
        return breakdown_download_response(estimates, file_format, request.user)


COMPARISON_PARAMETERS = [
    OpenApiParameter(
        "wave",
        {"type": "array", "items": ID_SCHEMA},
        style="form",
        explode=True,
        description="wave id (repeatable)",
    ),
    OpenApiParameter("geography", OpenApiTypes.STR, enum=Geography.values),
    OpenApiParameter(
        "indicator",
        {"type": "array", "items": {"type": "string", "maxLength": 32}},
        style="form",
        explode=True,
        description="indicator code",
    ),
    OpenApiParameter(
        "region",
        {"type": "array", "items": {"type": "string", "maxLength": 8}},
        style="form",
        explode=True,
        description="ISO code; KZ = national",
    ),
]


def _comparison_query(request: Request) -> dict:
    # An empty value (``?indicator=``) filters nothing, as in the other lists' filters.
    data = {
        key: [value for value in request.query_params.getlist(key) if value != ""]
        for key in ("wave", "indicator", "region")
    }
    data = {key: values for key, values in data.items() if values}
    for key in ("geography", "file_format"):
        if request.query_params.get(key):
            data[key] = request.query_params[key]
    query = ComparisonQueryInputSerializer(data=data)
    query.is_valid(raise_exception=True)
    return query.validated_data


class ComparisonTableView(GenericAPIView):
    """The regional comparison table: one row per wave x geography x region x indicator."""

    permission_classes = [CanViewEstimates]
    serializer_class = ComparisonRowOutputSerializer
    filter_backends: list = []

    @extend_schema(
        parameters=COMPARISON_PARAMETERS, responses=ComparisonRowOutputSerializer(many=True)
    )
    def get(self, request: Request) -> Response:
        params = _comparison_query(request)
        page = self.paginate_queryset(comparison_estimates(params, request.user))
        catalogue = exports.indicator_catalogue()
        rows = [exports.regional_row(estimate, catalogue) for estimate in page or []]
        return self.get_paginated_response(ComparisonRowOutputSerializer(rows, many=True).data)


class ComparisonDownloadView(GenericAPIView):
    """The whole regional comparison table as a file: csv, xlsx, json or parquet."""

    permission_classes = [CanViewEstimates]
    filter_backends: list = []
    serializer_class = serializers.Serializer

    @extend_schema(
        parameters=[
            *COMPARISON_PARAMETERS,
            OpenApiParameter(
                "file_format", OpenApiTypes.STR, enum=list(exports.REGIONAL_FORMATS), required=True
            ),
        ],
        responses={
            (200, exports.CONTENT_TYPES[fmt].split(";")[0]): FILE_SCHEMA[fmt]
            for fmt in exports.REGIONAL_FORMATS
        },
    )
    def get(self, request: Request) -> HttpResponse:
        params = _comparison_query(request)
        file_format = params.get("file_format")
        if not file_format:
            raise ValidationError({"file_format": ["Choose csv, xlsx, json or parquet."]})
        return regional_download_response(params, file_format, request.user)


def export_job_request_schema() -> dict:
    """The body of a new export job: each kind with the formats it comes in (one of).

    The wave ids must name existing waves, and a microdata .xlsx holds at most an Excel
    sheet's rows: those refusals (400) depend on the data, not on the body's shape.
    """
    common: dict[str, dict[str, Any]] = {
        "waves": {"type": "array", "items": ID_SCHEMA, "description": "wave ids"},
        "language": {"type": "string", "enum": ["kk", "ru", "en"], "default": "ru"},
        "values": {"type": "string", "enum": ["labels", "codes"], "default": "labels"},
        "geography": {"type": "string", "enum": list(Geography.values)},
        "indicators": {
            "type": "array",
            "items": {"type": "string", "maxLength": 32, "pattern": NO_NUL_PATTERN},
        },
    }
    variants = []
    for kind, formats in sorted(exports.KINDS.items()):
        properties = {
            "kind": {"type": "string", "enum": [kind]},
            "file_format": {"type": "string", "enum": list(formats)},
            **common,
        }
        required = ["kind", "file_format"]
        if kind in {"microdata", "codebook"}:
            properties["waves"] = {**common["waves"], "minItems": 1}
            required.append("waves")
        variants.append({"type": "object", "properties": properties, "required": required})
    return {"oneOf": variants}


class ExportJobViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Your export jobs: create one, follow its progress, download the file, retry a failure."""

    serializer_class = ExportJobOutputSerializer
    permission_classes = [permissions.IsAuthenticated, CanViewEstimates]
    filterset_fields = ["status", "kind"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        if getattr(self, "swagger_fake_view", False):  # the schema: no user, typed ids
            return ExportJob.objects.none()
        return ExportJob.objects.filter(requested_by=self.request.user).order_by("-created_at")

    @extend_schema(
        request={"application/json": export_job_request_schema()},
        responses={201: ExportJobOutputSerializer},
    )
    def create(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        data = ExportJobInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = dict(data.validated_data)
        kind, file_format = params.pop("kind"), params.pop("file_format")
        capability = access.capability_for_export(kind)
        params["waves"] = access.permitted_wave_ids(request.user, capability, params.get("waves"))
        if not params["waves"]:  # none named and none in the user's surveys: never "all"
            raise ValidationError({"waves": ["No wave of your surveys to export."]})
        try:
            job = exports.request_export(
                user=request.user, kind=kind, file_format=file_format, parameters=params
            ).job
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except exports.ExportError as exc:
            raise ValidationError({"detail": [str(exc)]}) from exc
        job.refresh_from_db()
        output = ExportJobOutputSerializer(job, context={"request": request})
        return Response(output.data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ExportJobOutputSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None, **kwargs: str) -> Response:
        job = self.get_object()
        access.require(request.user, access.capability_for_export(job.kind), job)
        try:
            job = exports.retry_export_job(job=job)
        except exports.ExportError as exc:
            raise ValidationError({"detail": [str(exc)]}) from exc
        job.refresh_from_db()
        return Response(ExportJobOutputSerializer(job, context={"request": request}).data)

    @extend_schema(
        responses={
            **{
                (200, exports.CONTENT_TYPES[fmt].split(";")[0]): FILE_SCHEMA[fmt]
                for fmt in sorted(exports.CONTENT_TYPES)
            },
            409: OpenApiResponse(
                ErrorOutputSerializer, description="The export is not finished (or failed)."
            ),
        }
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None, **kwargs: str) -> HttpResponseBase:
        job = self.get_object()
        return export_file_response(job, request.user)
