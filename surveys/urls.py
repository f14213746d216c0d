"""Respondent-facing URLs: the anonymous web questionnaire."""

from django.urls import path

from surveys import webform

app_name = "surveys"

urlpatterns = [
    path("s/<str:token>/", webform.questionnaire, name="questionnaire"),
    path("s/<str:token>/thanks/", webform.thanks, name="thanks"),
]
