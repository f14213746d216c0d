from django.contrib.auth import views as auth_views
from django.urls import path

from analytics import summary_views, views

app_name = "analytics"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="analytics:login"), name="logout"),
    path("freshness/", views.freshness, name="freshness"),
    path("regional.<str:file_format>", views.regional_download, name="regional-download"),
    path("microdata/", views.microdata_export, name="microdata-export"),
    path("codebook/", views.codebook, name="codebook"),
    path("summaries/", summary_views.question_summaries, name="summaries"),
    path(
        "summaries.<str:file_format>",
        summary_views.question_summaries_download,
        name="summaries-download",
    ),
    path("exports/", views.export_jobs, name="export-jobs"),
    path("exports/<int:pk>/", views.export_job, name="export-job"),
    path("exports/<int:pk>/status/", views.export_job_status, name="export-job-status"),
    path("exports/<int:pk>/download/", views.export_job_download, name="export-job-download"),
    path("exports/<int:pk>/retry/", views.export_job_retry, name="export-job-retry"),
    path("token/", views.api_token, name="api-token"),
]
