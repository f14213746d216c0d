"""REST API routes (/api/...), the OpenAPI schema and its offline docs page."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter
from rest_framework.settings import api_settings

from analytics import api as analytics_api
from apitokens.api import ObtainTokenView
from config.schema import api_not_found
from surveys import api as surveys_api

app_name = "api"
PARSERS = api_settings.DEFAULT_PARSER_CLASSES

router = DefaultRouter()
router.register("surveys", surveys_api.SurveyViewSet, basename="survey")
router.register("waves", surveys_api.WaveViewSet, basename="wave")
router.register("regions", surveys_api.RegionViewSet, basename="region")
router.register("form-versions", surveys_api.FormVersionViewSet, basename="form-version")
router.register("estimates", analytics_api.EstimateViewSet, basename="estimate")
router.register(
    "breakdown-estimates", analytics_api.BreakdownEstimateViewSet, basename="breakdown-estimate"
)
router.register("export-jobs", analytics_api.ExportJobViewSet, basename="export-job")

urlpatterns = [
    path("comparison/", analytics_api.ComparisonTableView.as_view(), name="comparison"),
    path(
        "comparison/download/",
        analytics_api.ComparisonDownloadView.as_view(),
        name="comparison-download",
    ),
    # The project's parsers (JSON with a nesting limit), not the view's own stock JSON parser.
    path("token/", ObtainTokenView.as_view(parser_classes=PARSERS), name="token"),
    path("collect/", include("collect.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file: no inline script (CSP).
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
    path("", include(router.urls)),
    re_path(r"^.*$", api_not_found),
]
