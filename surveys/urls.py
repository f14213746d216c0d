"""Respondent-facing URLs: the anonymous web questionnaire."""

from django.urls import path

from surveys import views, webform

app_name = "surveys"

urlpatterns = [
    path("favicon.ico", views.favicon, name="favicon"),
    path("s/sw.js", webform.service_worker, name="service_worker"),
    path("s/<str:token>/", webform.questionnaire, name="questionnaire"),
    path("s/<str:token>/thanks/", webform.thanks, name="thanks"),
]
