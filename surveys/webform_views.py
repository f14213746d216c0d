"""The respondent web form's views: the questionnaire page, its submission (JSON from the
script, a plain POST without it), the thank-you page and the service worker.

What a page shows is built in `surveys.webform` and `surveys.form_page`; refusals come
from the one admission check of the submission service.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from config import parsers as bounded_json
from surveys.admission import (
    ADMISSION_MESSAGES,
    SubmissionRefused,
    admission_refusal,
    refusal_for,
)
from surveys.assignment import draw_balanced
from surveys.definition import (
    INTERFACE_LANGUAGES,
    interface_language,
)
from surveys.form_page import page_context
from surveys.models import Channel, InvitationLink, pick_translation
from surveys.selectors import link_for_token
from surveys.services import MAX_ANSWERS_BYTES, submit_interview
from surveys.validation import (
    FORM_ERRORS,
    AnswerErrors,
)
from surveys.webform import (
    REFUSAL_STATUS,
    closing_notes,
    form_title,
    posted_answers,
    user_agent_class,
)


def _language(request: HttpRequest, languages: list[str], default: str) -> str:
    wanted = request.GET.get("lang", "")
    usable = languages or ["default"]
    if wanted in usable:
        return wanted
    return default if default in usable else usable[0]


# The pages for links that take no interview, by the refusal's code: the reason form.js
# and the page's markup name, the status, and what the respondent can do.
UNAVAILABLE = {
    "link_unknown": ("unknown", 404),
    "link_wave": ("unknown", 404),
    "link_revoked": ("revoked", 410),
    "link_used": ("used", 410),
    "wave_closed": ("closed", 410),
}


def _unavailable(request: HttpRequest, refusal: SubmissionRefused) -> HttpResponse:
    """A clear page in Kazakh, Russian and English: a respondent may not read the first."""
    reason, status = UNAVAILABLE[refusal.code]
    blocks = []
    for code in INTERFACE_LANGUAGES:
        with translation.override(code):
            texts = {
                "unknown": gettext(
                    "Please check that the address was copied in full. If you received it from the research team, ask them for a new link."
                ),
                "closed": gettext(
                    "The survey no longer accepts answers. Thank you for your interest."
                ),
                "revoked": gettext(
                    "The research team no longer uses this link. If you were invited, ask them for a new link."
                ),
                "used": gettext(
                    "Each invitation can be used for one questionnaire, and this one has been completed. Thank you for taking part."
                ),
            }
            title = str(ADMISSION_MESSAGES[refusal.code])
            blocks.append({"lang": code, "title": title, "text": texts[reason]})
    response = render(
        request,
        "surveys/form/unavailable.html",
        {"blocks": blocks, "reason": reason},
        status=status,
    )
    response.refusal = refusal  # type: ignore[attr-defined]
    return response


def _check_link(
    request: HttpRequest, token: str
) -> tuple[InvitationLink | None, HttpResponse | None]:
    link = link_for_token(token)
    refusal = admission_refusal(link=link, channel=Channel.WEB)
    if refusal is not None:
        return None, _unavailable(request, refusal)
    return link, None


def _json_unavailable(request: HttpRequest, refusal: HttpResponse) -> JsonResponse:
    """The refusal of a link or wave for form.js, in the language the page was in."""
    code = refusal.refusal.code  # type: ignore[attr-defined]
    try:
        language = bounded_json.loads(request.body).get("language")
    except (ValueError, AttributeError, UnicodeDecodeError):
        language = None
    with translation.override(interface_language(language if isinstance(language, str) else "kk")):
        return JsonResponse(
            {"code": UNAVAILABLE[code][0], "message": str(ADMISSION_MESSAGES[code])},
            status=refusal.status_code,
        )


@csrf_exempt  # anonymous: no session or account is acted upon; the token is the credential
@require_http_methods(["GET", "POST"])
def questionnaire(request: HttpRequest, token: str) -> HttpResponse:
    """GET: the form. POST: JSON from form.js, or the plain HTML form without JavaScript."""
    link, refusal = _check_link(request, token)
    if refusal is not None:
        if request.method == "POST" and _is_json(request):
            return _json_unavailable(request, refusal)
        return refusal
    assert link is not None
    version = link.wave.form_version
    assert version is not None
    if request.method == "POST":
        if _is_json(request):
            return _submit_json(request, link)
        return _submit_html(request, link)
    language = _language(request, version.languages, version.default_language)
    return _render_form(request, link, language)


def _render_form(
    request: HttpRequest,
    link: InvitationLink,
    language: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    instance_id: str = "",
    started_at: str = "",
    status: int = 200,
) -> HttpResponse:
    version = link.wave.form_version
    assert version is not None
    instance_id = _valid_uuid(instance_id) or _valid_uuid(
        request.COOKIES.get(_instance_cookie(link), "")
    )
    instance_id = instance_id or str(uuid.uuid4())
    # A balanced assignment takes its slot in the wave's blocks when first drawn, here.
    halves = draw_balanced(wave=link.wave, definition=version.definition, instance_id=instance_id)
    with translation.override(interface_language(language)):
        context = page_context(
            version,
            language,
            token=link.token,
            explicit_language="lang" in request.GET,
            single=link.is_single_use,
            submit_url=reverse("surveys:questionnaire", args=[link.token]),
            thanks_url=reverse("surveys:thanks", args=[link.token]) + f"?lang={language}",
            service_worker=reverse("surveys:service_worker"),
            values=values,
            errors=errors,
            instance_id=instance_id,
            halves=halves,
            started_at=started_at,
        )
        context["link"] = link
        response = render(request, "surveys/form/questionnaire.html", context, status=status)
    # The interview the browser is answering keeps its id (and so its random assignment)
    # through reloads and language switches until it is stored.
    response.set_cookie(
        _instance_cookie(link),
        instance_id,
        max_age=INSTANCE_COOKIE_AGE,
        path=reverse("surveys:questionnaire", args=[link.token]),
        samesite="Lax",
        httponly=True,
        secure=request.is_secure(),
    )
    return response


INSTANCE_COOKIE_AGE = 30 * 24 * 3600


def _instance_cookie(link: InvitationLink) -> str:
    return f"tanys_interview_{link.pk}"


def _valid_uuid(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return ""


def _forget_instance(response: HttpResponse, link: InvitationLink) -> HttpResponse:
    """The interview is stored: the next one on this browser gets a new id and draw."""
    response.delete_cookie(
        _instance_cookie(link), path=reverse("surveys:questionnaire", args=[link.token])
    )
    return response


def _is_json(request: HttpRequest) -> bool:
    return request.content_type == "application/json"


def _too_large(request: HttpRequest) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return True
    return length > MAX_ANSWERS_BYTES + 20_000


def _client_time(value: Any) -> dt.datetime | None:
    """A timestamp from the browser, or None when absent, unreadable or in the future."""
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return moment if moment <= timezone.now() + dt.timedelta(minutes=5) else None


def _submit(
    request: HttpRequest,
    link: InvitationLink,
    *,
    answers: Any,
    language: str,
    instance_id: Any,
    started_at: Any,
    ended_at: Any,
) -> None:
    submit_interview(
        wave=link.wave,
        answers=answers,
        channel=Channel.WEB,
        language=language,
        instance_id=instance_id,
        started_at=_client_time(started_at),
        ended_at=_client_time(ended_at) or timezone.now(),
        user_agent_class=user_agent_class(request.headers.get("User-Agent", "")),
        link=link,
    )


def _submit_json(request: HttpRequest, link: InvitationLink) -> JsonResponse:
    version = link.wave.form_version
    assert version is not None
    language = version.default_language
    if _too_large(request):
        with translation.override(interface_language(language)):
            message = gettext("The answers are too large to be accepted (more than %(kb)d KB).") % {
                "kb": MAX_ANSWERS_BYTES // 1000
            }
        return JsonResponse({"code": "too_large", "message": message}, status=413)
    try:
        payload = bounded_json.loads(request.body)  # a ValueError when nested too deep
    except (ValueError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict):
        with translation.override(interface_language(language)):
            message = gettext("The answers could not be read.")
        return JsonResponse({"code": "bad_request", "message": message}, status=400)
    if payload.get("language") in version.languages:
        language = payload["language"]
    try:
        _submit(
            request,
            link,
            answers=payload.get("answers"),
            language=language,
            instance_id=payload.get("instance_id"),
            started_at=payload.get("started_at"),
            ended_at=payload.get("ended_at"),
        )
    except AnswerErrors as exc:
        with translation.override(interface_language(language)):
            message = gettext("Please correct the answers marked below.")
        return JsonResponse(
            {"code": "answers", "message": message, "errors": exc.errors}, status=400
        )
    except SubmissionRefused as exc:
        return JsonResponse(
            {"code": exc.code, "message": exc.message}, status=REFUSAL_STATUS.get(exc.code, 400)
        )
    thanks = reverse("surveys:thanks", args=[link.token]) + f"?lang={language}"
    response = JsonResponse({"code": "stored", "redirect": thanks})
    _forget_instance(response, link)
    return response


def _submit_html(request: HttpRequest, link: InvitationLink) -> HttpResponse:
    """The same submission from the plain HTML form (a browser without JavaScript)."""
    version = link.wave.form_version
    assert version is not None
    language = request.POST.get("_language", "")
    if language not in version.languages:
        language = version.default_language
    answers = posted_answers(request.POST, version.definition)
    instance_id = request.POST.get("_instance_id", "")
    started_at = request.POST.get("_started_at", "")
    if "_add" in request.POST:
        # "Add another" without JavaScript: the page again, with a blank entry to fill.
        return _render_form(
            request,
            link,
            language,
            values=answers,
            instance_id=instance_id,
            started_at=started_at,
        )
    try:
        _submit(
            request,
            link,
            answers=answers,
            language=language,
            instance_id=instance_id,
            started_at=started_at,
            ended_at=None,
        )
    except AnswerErrors as exc:
        return _render_form(
            request,
            link,
            language,
            values=answers,
            errors=exc.errors,
            instance_id=instance_id,
            started_at=started_at,
            status=400,
        )
    except SubmissionRefused as exc:
        return _render_form(
            request,
            link,
            language,
            values=answers,
            errors={FORM_ERRORS: [exc.message]},
            instance_id=instance_id,
            started_at=started_at,
            status=REFUSAL_STATUS.get(exc.code, 400),
        )
    return _forget_instance(
        redirect(reverse("surveys:thanks", args=[link.token]) + f"?lang={language}"), link
    )


# The files a reload offline needs; a change to any of them makes a new worker and cache.
STATIC_FOLDER = Path(__file__).resolve().parent / "static" / "surveys"
OFFLINE_FILES = ("sw.js", "outbox.js", "form.js", "expressions.js", "form.css", "favicon.ico")


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """The form's service worker, served under /s/ so that its scope covers the form pages."""
    digest = hashlib.sha256()
    for name in OFFLINE_FILES:
        digest.update((STATIC_FOLDER / name).read_bytes())
    head = (
        f"const VERSION = {json.dumps(digest.hexdigest()[:16])};\n"
        f"const STATIC_URL = {json.dumps(settings.STATIC_URL)};\n"
    )
    response = HttpResponse(
        head + (STATIC_FOLDER / "sw.js").read_text(encoding="utf-8"),
        content_type="text/javascript; charset=utf-8",
    )
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def thanks(request: HttpRequest, token: str) -> HttpResponse:
    link = link_for_token(token)
    if link is None or link.wave.form_version is None:
        return _unavailable(request, refusal_for("link_unknown"))
    version = link.wave.form_version
    language = _language(request, version.languages, version.default_language)
    closing = [
        pick_translation(node.get("label"), language) for node in closing_notes(version.definition)
    ]
    with translation.override(interface_language(language)):
        return render(
            request,
            "surveys/form/thanks.html",
            {
                "language": language,
                "title": form_title(version.definition, language, version.title),
                "token": link.token,
                "closing": [text for text in closing if text],
            },
        )
