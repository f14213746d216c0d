from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from surveys.selectors import waves_with_counts


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "surveys/home.html", {"waves": waves_with_counts()})


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness and database reachability, for load balancers and container health checks."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")
