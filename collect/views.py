"""The enumerators' app at /collect/: its shell, manifest, service worker and the
questionnaire pages it caches (the web form's renderer, with the app's storage)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from access.permissions import Capability, capability_required, enumerators_for
from collect import selectors, services
from collect.authentication import DeviceTokenAuthentication
from collect.models import CollectSettings
from collect.tokens import qr_svg
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


def app_messages() -> dict[str, str]:
    """The app's texts in the active language (the page carries all three)."""
    return {
        "title": gettext("Enumerator's tablet"),
        "enrolTitle": gettext("Enrol this tablet"),
        "enrolHelp": gettext(
            "Sign in with your enumerator account, or enter the code your supervisor gave you."
        ),
        "username": gettext("Username"),
        "password": gettext("Password"),
        "or": gettext("or"),
        "code": gettext("Enrolment code"),
        "label": gettext("Name of this tablet (optional)"),
        "enrol": gettext("Enrol"),
        "enrolFailed": gettext("The tablet could not be enrolled."),
        "offlineNeeded": gettext("Connect to the internet to enrol this tablet."),
        "signedInAs": gettext("Enumerator: %(name)s"),
        "assignments": gettext("Assignments"),
        "noAssignments": gettext("No assignments yet."),
        "progress": gettext("%(done)s of %(quota)s interviews done, %(accepted)s accepted"),
        "progressUnlimited": gettext("%(done)s interviews done, %(accepted)s accepted (no quota)"),
        "newInterview": gettext("New interview"),
        "quotaReached": gettext(
            "The quota of this assignment is reached (%(count)s of %(quota)s). "
            "Check with your supervisor before starting another interview."
        ),
        "startAnyway": gettext("Start anyway"),
        "drafts": gettext("Drafts"),
        "waiting": gettext("Waiting to be sent"),
        "sent": gettext("Sent"),
        "returned": gettext("Returned by the supervisor"),
        "problems": gettext("Not accepted by the server"),
        "continue": gettext("Continue"),
        "fix": gettext("Fix and resend"),
        "none": gettext("None."),
        "sendNow": gettext("Send now"),
        "refresh": gettext("Update assignments"),
        "online": gettext("Online"),
        "offline": gettext(
            "Offline: interviews are kept on this tablet and sent when a connection is back."
        ),
        "offlineReady": gettext("Ready to work offline."),
        "storage": gettext("Storage"),
        "storagePersisted": gettext("Storage is persistent: the browser will not clear it."),
        "storageNotPersisted": gettext(
            "Storage is not persistent: the browser may clear it when space runs low. "
            "Export interviews regularly."
        ),
        "storageFree": gettext("Free space: %(free)s MB"),
        "storageLow": gettext(
            "Little space is left on this tablet: send or export interviews now."
        ),
        "files": gettext("Files"),
        "export": gettext("Export waiting interviews to a file"),
        "import": gettext("Import interviews from a file"),
        "exported": gettext("%(count)s interviews exported."),
        "imported": gettext("%(count)s interviews imported; they are sent with the others."),
        "importBad": gettext("This file is not an export of interviews."),
        "revoked": gettext(
            "This tablet's access was withdrawn. Your interviews are kept on it: "
            "export them to a file and ask your supervisor to enrol the tablet again."
        ),
        "supervisorComment": gettext("Supervisor's comment:"),
        "overQuota": gettext("over quota"),
        "waitingCount": gettext("Waiting:"),
        "sentCount": gettext("Sent:"),
    }


@require_GET
def app(request: HttpRequest) -> HttpResponse:
    """The app shell: everything else happens in the browser, online or not."""
    messages = {}
    for code in LANGUAGE_NAMES:
        with translation.override(code):
            messages[code] = app_messages()
    config = {
        "appVersion": APP_VERSION,
        "language": translation.get_language() or "kk",
        "messages": messages,
    }
    return render(
        request,
        "collect/app.html",
        {"config": config, "languages": LANGUAGE_NAMES, "app_version": APP_VERSION},
    )


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
            {"src": static("collect/icon-512.png"), "sizes": "512x512", "type": "image/png"},
        ],
    }
    response = JsonResponse(body)
    response["Content-Type"] = "application/manifest+json"
    return response


SHELL_FILES = [
    "collect/app.js", "collect/store.js", "collect/outbox.js", "collect/interview.js",
    "collect/app.css", "collect/icon.svg", "surveys/expressions.js", "surveys/form.js",
    "surveys/form.css",
]  # fmt: skip


@functools.cache
def shell_version() -> str:
    """The app version and a digest of the files the shell caches: a deployment that
    changes any of them installs a new shell cache (the questionnaire cache stays)."""
    digest = hashlib.sha256(APP_VERSION.encode())
    for name in SHELL_FILES:
        path = finders.find(name)
        if path:
            digest.update(Path(str(path)).read_bytes())
    return f"{APP_VERSION}-{digest.hexdigest()[:12]}"


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """Served from /collect/ so that its scope is the app; never cached by HTTP caches."""
    text = (STATIC_DIR / "sw.js").read_text(encoding="utf-8")
    text = text.replace("__APP_VERSION__", shell_version())
    text = text.replace("__STATIC__", static("").rstrip("/"))
    response = HttpResponse(text, content_type="text/javascript")
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/collect/"
    return response


@capability_required(Capability.REVIEW_SUBMISSIONS, login_url=reverse_lazy("analytics:login"))
@require_http_methods(["GET", "POST"])
def enrolment_code(request: HttpRequest) -> HttpResponse:
    """Supervisors: a single-use code for one enumerator's tablet, as text and QR code.

    The QR code holds the app's address with the code, so a tablet's camera opens the app
    with the code filled in."""
    enumerators = enumerators_for(request.user).order_by("username")
    context: dict[str, object] = {"enumerators": enumerators}
    if request.method == "POST":
        enumerator = enumerators.filter(pk=request.POST.get("enumerator") or 0).first()
        if enumerator is None:
            context["error"] = gettext("Choose an enumerator.")
        else:
            entry, code = services.make_enrolment_code(
                enumerator=enumerator, created_by=request.user
            )
            url = request.build_absolute_uri(reverse("collect:app")) + f"?code={code}"
            context.update({"entry": entry, "code": code, "url": url, "qr": mark_safe(qr_svg(url))})
    return render(request, "collect/enrolment_code.html", context)


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
            "collect": {
                "appVersion": APP_VERSION,
                "formScript": static("surveys/form.js"),
                "recordGps": bool(
                    CollectSettings.objects.filter(
                        survey_id=version.survey_id, record_gps=True
                    ).exists()
                ),
                "supervisorComment": gettext("Supervisor's comment:"),
                "questionComment": gettext("Supervisor:"),
            },
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
