"""The platform's URLs plus /bench/bare/: the least a Django view can do with an
interview (parse the JSON, insert it into PostgreSQL), the HTTP benchmark's baseline."""

import json

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as platform


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_bare (body) VALUES (%s)", [json.dumps(body)])
    return JsonResponse({"results": [{"status": "stored"}]})


urlpatterns = [path("bench/bare/", bare), *platform]
