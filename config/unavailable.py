"""While the database is unreachable, answer 503 with Retry-After instead of a 500.

A PostgreSQL restart or a network cut makes every query of a request fail with
``OperationalError`` (or ``InterfaceError`` on a connection that was already closed). That is
not a bug of the request: the client should come back shortly, and a retry with the same
interview id stores the interview once (the submission service is idempotent on it). The
middleware turns those errors into a 503 with ``Retry-After`` and a translated message: JSON
for the API and for JSON requests (the web form's script), a small page otherwise. It logs
one line, without a traceback. The page is built without templates or the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext

from config import parsers as bounded_json

logger = logging.getLogger("tanys.unavailable")

RETRY_AFTER_SECONDS = 10
LANGUAGES = ("kk", "ru", "en")


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        first_line = str(exception).strip().splitlines()[0] if str(exception).strip() else ""
        logger.warning(
            "database unavailable, answered 503: %s %s (%s: %s)",
            request.method,
            request.path,
            exception.__class__.__name__,
            first_line[:200],
        )
        return unavailable_response(request)


def wants_json(request: HttpRequest) -> bool:
    return (
        request.path.startswith("/api/")
        or request.content_type == "application/json"
        or "application/json" in request.headers.get("Accept", "")
    )


def unavailable_response(request: HttpRequest) -> HttpResponse:
    response: HttpResponse
    if wants_json(request):
        with translation.override(_body_language(request) or translation.get_language()):
            message = gettext(
                "The service is temporarily unavailable. Please try again in a minute."
            )
        response = JsonResponse(
            {"code": "unavailable", "message": message, "detail": message}, status=503
        )
    else:
        response = HttpResponse(_page(), status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _body_language(request: HttpRequest) -> str | None:
    """The interview language a JSON body names (the web form's script sends it)."""
    if request.content_type != "application/json":
        return None
    try:
        language = bounded_json.loads(request.body).get("language")
    except Exception:  # an unreadable or consumed body: the request's language will do
        return None
    return language if language in LANGUAGES else None


def _page() -> str:
    """The message in Kazakh, Russian and English: the reader's language may be unknown."""
    active = translation.get_language() or "kk"
    first = active if active in LANGUAGES else "kk"
    order = [first, *(code for code in LANGUAGES if code != first)]
    blocks = []
    title = ""
    for code in order:
        with translation.override(code):
            heading = gettext("Temporarily unavailable")
            text = gettext("The service is temporarily unavailable. Please try again in a minute.")
        title = title or heading
        blocks.append(
            f'<section lang="{code}"><h1>{escape(heading)}</h1><p>{escape(text)}</p></section>'
        )
    return (
        f'<!doctype html><html lang="{order[0]}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head><body>{''.join(blocks)}</body></html>"
    )
