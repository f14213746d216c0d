from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from surveys import views as survey_views

urlpatterns = [
    path("", survey_views.home, name="home"),
    path("healthz", survey_views.healthz, name="healthz"),
    path("", include("surveys.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("analytics/", include("analytics.urls")),
    path("api/", include("config.api_urls", namespace="api")),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
