"""/collect/: the enumerators' progressive web app."""

from django.urls import path

from collect import views

app_name = "collect"

urlpatterns = [
    path("", views.app, name="app"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("sw.js", views.service_worker, name="sw"),
    path("form/<int:pk>/", views.form_page, name="form"),
]
