"""The enumerators' app at /collect/: its shell, manifest, service worker and the
questionnaire pages it caches (the web form's renderer, with the app's storage)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.http import require_GET
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from collect import selectors
from collect.authentication import DeviceTokenAuthentication
from surveys.definition import interface_language
from surveys.models import pick_translation
from surveys.validation import TEXT_MAX_LENGTH
from surveys.webform import (
    LANGUAGE_NAMES,
    build_pages,
    client_logic,
    entry_templates,
    interface_messages,
)

APP_VERSION = "1"
STATIC_DIR = Path(__file__).resolve().parent / "static" / "collect"


@require_GET
def app(request: HttpRequest) -> HttpResponse:
    """The app shell: everything else happens in the browser, online or not."""
    return render(request, "collect/app.html", {"app_version": APP_VERSION})


@require_GET
def manifest(request: HttpRequest) -> JsonResponse:
    body = {
        "name": "Tanys — " + gettext("Enumerators"),
        "short_name": "Tanys",
        "start_url": "/collect/",
        "scope": "/collect/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#1d4f91",
        "icons": [
            {"src": static("collect/icon.svg"), "sizes": "any", "type": "image/svg+xml"},
            {"src": static("collect/icon-192.png"), "sizes": "192x192", "type": "image/png"},
        ],
    }
    response = JsonResponse(body)
    response["Content-Type"] = "application/manifest+json"
    return response


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """Served from /collect/ so that its scope is the app; never cached by HTTP caches."""
    text = (STATIC_DIR / "sw.js").read_text(encoding="utf-8")
    text = text.replace("__APP_VERSION__", APP_VERSION)
    text = text.replace("__STATIC__", settings.STATIC_URL.rstrip("/"))
    response = HttpResponse(text, content_type="text/javascript")
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/collect/"
    return response


@require_GET
def form_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The questionnaire page of a version in one language, for the app to cache.

    The same renderer and templates as the respondent web form; the app's script keeps the
    interview in IndexedDB and hands the finished one to the outbox instead of posting it.
    """
    try:
        found = DeviceTokenAuthentication().authenticate(Request(request))
    except AuthenticationFailed:
        found = None
    version = selectors.form_version_for(found[0], pk) if found else None
    if version is None:
        return HttpResponse(status=404 if found else 401)
    definition = version.definition
    languages = [c for c in version.languages if c != "default"] or ["default"]
    language = request.GET.get("lang", "")
    if language not in languages:
        language = (
            version.default_language if version.default_language in languages else languages[0]
        )
    with translation.override(interface_language(language)):
        config = {
            "token": f"collect-{version.pk}",
            "lang": language,
            "explicitLang": True,
            "single": True,
            "submitUrl": "",
            "thanksUrl": "/collect/",
            "logic": client_logic(definition, language),
            "messages": interface_messages(),
            "textMax": TEXT_MAX_LENGTH,
            "formVersion": version.pk,
        }
        context = {
            "title": pick_translation({"default": version.title}, language),
            "language": language,
            "languages": [
                (
                    code,
                    LANGUAGE_NAMES.get(code)
                    or definition.get("language_names", {}).get(code, code),
                )
                for code in languages
                if code != "default"
            ],
            "pages": build_pages(definition, language, None, None),
            "templates": entry_templates(definition, language),
            "config": config,
            "form_errors": [],
            "has_errors": False,
            "instance_id": "",
            "started_at": "",
        }
        response = render(request, "collect/interview.html", context)
    response["Cache-Control"] = "private, no-store"
    return response
