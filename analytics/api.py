"""Analytics API: indicator estimates, the regional comparison table and export jobs.

Estimates and the comparison table need `surveys.view_estimates`; microdata and codebook
export jobs need `surveys.export_microdata` as well. A user sees only their own jobs.
"""

from __future__ import annotations

import django_filters
from django.http import FileResponse, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import exports
from analytics.models import ExportJob, IndicatorEstimate
from analytics.serializers import (
    ID_MAX,
    ComparisonQueryInputSerializer,
    ComparisonRowOutputSerializer,
    EstimateOutputSerializer,
    ExportJobInputSerializer,
    ExportJobOutputSerializer,
)
from surveys.api import CanViewEstimates
from surveys.models import Geography, Wave


class EstimateFilter(django_filters.FilterSet):
    survey = django_filters.CharFilter(field_name="wave__survey__code")
    wave = django_filters.NumberFilter(field_name="wave_id", min_value=1, max_value=ID_MAX)
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


class EstimateViewSet(viewsets.ReadOnlyModelViewSet):
    """Current indicator estimates (the published result set of each wave)."""

    serializer_class = EstimateOutputSerializer
    permission_classes = [CanViewEstimates]
    filterset_class = EstimateFilter

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return (
            IndicatorEstimate.objects.current()
            .select_related("wave__survey", "region", "previous_wave")
            .order_by("wave__survey__code", "wave__code", "geography", "indicator", "region__code")
        )


COMPARISON_PARAMETERS = [
    OpenApiParameter("wave", OpenApiTypes.INT, many=True, description="wave id (repeatable)"),
    OpenApiParameter("geography", OpenApiTypes.STR, enum=["KZ2013", "KZ2022"]),
    OpenApiParameter("indicator", OpenApiTypes.STR, many=True, description="indicator code"),
    OpenApiParameter("region", OpenApiTypes.STR, many=True, description="ISO code; KZ = national"),
]


def _comparison_query(request: Request) -> dict:
    data = {
        key: request.query_params.getlist(key)
        for key in ("wave", "indicator", "region")
        if request.query_params.getlist(key)
    }
    for key in ("geography", "file_format"):
        if request.query_params.get(key):
            data[key] = request.query_params[key]
    query = ComparisonQueryInputSerializer(data=data)
    query.is_valid(raise_exception=True)
    return query.validated_data


def _comparison_estimates(params: dict):  # type: ignore[no-untyped-def]
    waves = Wave.objects.filter(pk__in=params["wave"]) if params.get("wave") else None
    return exports.regional_estimates(
        waves=waves,
        geography=params.get("geography"),
        indicators=params.get("indicator"),
        region_codes=params.get("region"),
    )


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
        page = self.paginate_queryset(_comparison_estimates(params))
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
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request) -> HttpResponse:
        params = _comparison_query(request)
        file_format = params.get("file_format")
        if not file_format:
            raise ValidationError({"file_format": ["Choose csv, xlsx, json or parquet."]})
        return regional_download_response(params, file_format)


def regional_download_response(params: dict, file_format: str) -> HttpResponse:
    import io

    rows = exports.regional_rows(_comparison_estimates(params))
    buffer = io.BytesIO()
    exports.write_regional(rows, file_format, buffer)
    response = HttpResponse(buffer.getvalue(), content_type=exports.CONTENT_TYPES[file_format])
    response["Content-Disposition"] = (
        f'attachment; filename="{exports.regional_filename(file_format)}"'
    )
    return response


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
        return ExportJob.objects.filter(requested_by=self.request.user).order_by("-created_at")

    @extend_schema(request=ExportJobInputSerializer, responses={201: ExportJobOutputSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        data = ExportJobInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = dict(data.validated_data)
        kind, file_format = params.pop("kind"), params.pop("file_format")
        try:
            job = exports.create_export_job(
                user=request.user, kind=kind, file_format=file_format, parameters=params
            )
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except exports.ExportError as exc:
            raise ValidationError({"detail": [str(exc)]}) from exc
        job.refresh_from_db()
        output = ExportJobOutputSerializer(job, context={"request": request})
        return Response(output.data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ExportJobOutputSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        try:
            job = exports.retry_export_job(job=job)
        except exports.ExportError as exc:
            raise ValidationError({"detail": [str(exc)]}) from exc
        job.refresh_from_db()
        return Response(ExportJobOutputSerializer(job, context={"request": request}).data)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        job = self.get_object()
        return export_file_response(job)


def export_file_response(job: ExportJob) -> HttpResponseBase:
    if job.status != ExportJob.Status.DONE or not job.file:
        return HttpResponse(status=status.HTTP_409_CONFLICT, content=b"The export is not ready.")
    return FileResponse(
        job.file.open("rb"),
        as_attachment=True,
        filename=exports.export_filename(job),
        content_type=exports.CONTENT_TYPES.get(job.file_format, "application/octet-stream"),
    )


def job_for(user, pk: int) -> ExportJob:  # type: ignore[no-untyped-def]
    return get_object_or_404(ExportJob, pk=pk, requested_by=user)
