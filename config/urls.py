from django.contrib import admin
from django.urls import include, path

from surveys import views as survey_views

# MEDIA_ROOT holds private data (uploaded questionnaires, estimation snapshots, export caches
# and export files). It is never served by URL, in any mode: files leave it only through
# views that check the requester's permissions.
urlpatterns = [
    path("", survey_views.home, name="home"),
    path("healthz", survey_views.healthz, name="healthz"),
    path("", include("surveys.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("analytics/", include("analytics.urls")),
    path("api/", include("config.api_urls", namespace="api")),
    path("collect/", include("collect.urls")),
    path("odk/", include("odk.urls", namespace="odk")),
    path("review/", include("collect.review_urls", namespace="review")),
]
