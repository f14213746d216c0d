"""REST API routes (/api/...), the OpenAPI schema and its offline docs page."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from analytics import api as analytics_api
from surveys import api as surveys_api

app_name = "api"

router = DefaultRouter()
router.register("surveys", surveys_api.SurveyViewSet, basename="survey")
router.register("waves", surveys_api.WaveViewSet, basename="wave")
router.register("regions", surveys_api.RegionViewSet, basename="region")
router.register("form-versions", surveys_api.FormVersionViewSet, basename="form-version")
router.register("estimates", analytics_api.EstimateViewSet, basename="estimate")
router.register("export-jobs", analytics_api.ExportJobViewSet, basename="export-job")

urlpatterns = [
    path("comparison/", analytics_api.ComparisonTableView.as_view(), name="comparison"),
    path(
        "comparison/download/",
        analytics_api.ComparisonDownloadView.as_view(),
        name="comparison-download",
    ),
    path("token/", obtain_auth_token, name="token"),
    path("collect/", include("collect.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("", include(router.urls)),
]
