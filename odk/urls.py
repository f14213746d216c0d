from django.urls import path

from odk import pages, views

app_name = "odk"

urlpatterns = [
    path("devices/", pages.devices, name="devices"),
    path("devices/<uuid:pk>/revoke", pages.revoke, name="device-revoke"),
    path("formList", views.form_list, name="account-form-list"),
    path("submission", views.submission, name="account-submission"),
    path("forms/<int:version_id>/form.xml", views.form_download, name="account-form"),
    path("forms/<int:version_id>/manifest", views.manifest, name="account-manifest"),
    path("<str:token>/formList", views.form_list, name="form-list"),
    path("<str:token>/forms/<int:version_id>/form.xml", views.form_download, name="form"),
    path("<str:token>/forms/<int:version_id>/manifest", views.manifest, name="manifest"),
    path("<str:token>/submission", views.submission, name="submission"),
]
