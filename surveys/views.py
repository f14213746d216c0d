from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from surveys.selectors import waves_with_counts

FAVICON = Path(__file__).resolve().parent / "static" / "surveys" / "favicon.ico"


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "surveys/home.html", {"waves": waves_with_counts()})


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness and database reachability, for load balancers and container health checks."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


@require_GET
@cache_control(public=True, max_age=7 * 24 * 3600)
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for whatever the page's <link rel="icon"> says."""
    return HttpResponse(FAVICON.read_bytes(), content_type="image/x-icon")
