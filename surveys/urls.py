"""Respondent-facing URLs: the anonymous web questionnaire."""

from django.urls import path

from surveys import views, webform_views

app_name = "surveys"

urlpatterns = [
    path("favicon.ico", views.favicon, name="favicon"),
    path("s/sw.js", webform_views.service_worker, name="service_worker"),
    path("s/<str:token>/", webform_views.questionnaire, name="questionnaire"),
    path("s/<str:token>/thanks/", webform_views.thanks, name="thanks"),
]
