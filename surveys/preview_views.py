"""The web form in preview: a questionnaire version as respondents will see it, for the
research team, in a test mode whose interviews are never stored or counted.

Staff open it from the version's admin page (`surveys.admin.FormVersionAdmin`, which also
checks the survey is theirs). The page is the respondent's form, with a banner in Kazakh,
Russian and English; its last step checks the answers with the same validation as a real
submission (`surveys.validation.validate_answers`) and shows what would be stored, but
calls no service that writes: no interview, no link used, no draft on the server, no
audit of a submission. In the browser the form runs with a host (`preview.js`, see
`window.TanysFormHost` in form.js) that keeps no draft and sends nothing to the outbox.
Its page belongs to no interview, so it takes no slot of a balanced assignment
(`surveys.assignment`): it holds every arm and form.js draws in the browser. The page's
context is the respondent form's (`surveys.form_page.page_context`).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext

from config import parsers as bounded_json
from surveys.definition import INTERFACE_LANGUAGES, interface_language
from surveys.form_page import page_context
from surveys.labels import labelled_answers
from surveys.models import FormVersion
from surveys.validation import AnswerErrors, validate_answers
from surveys.webform import (
    form_title,
    posted_answers,
)


def _language(request: HttpRequest, version: FormVersion, wanted: str | None = None) -> str:
    usable = version.languages or ["default"]
    wanted = wanted if wanted is not None else request.GET.get("lang", "")
    if wanted in usable:
        return wanted
    return version.default_language if version.default_language in usable else usable[0]


def _banners() -> list[dict[str, str]]:
    banners = []
    for code in INTERFACE_LANGUAGES:
        with translation.override(code):
            banners.append({"lang": code, "text": gettext("Preview — answers are not saved")})
    return banners


def preview_form(request: HttpRequest, version: FormVersion, url: str) -> HttpResponse:
    """GET: the form. POST: its answers checked (JSON from preview.js, or the plain form)."""
    if request.method == "POST":
        if request.content_type == "application/json":
            return _check_json(request, version)
        return _check_html(request, version, url)
    return _render(request, version, url, _language(request, version))


def _render(
    request: HttpRequest,
    version: FormVersion,
    url: str,
    language: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    with translation.override(interface_language(language)):
        context = page_context(
            version,
            language,
            # Where form.js keeps its state in the browser: preview.js clears it at once.
            token=f"preview-{version.pk}",
            explicit_language="lang" in request.GET,
            single=False,
            submit_url=url,
            values=values,
            errors=errors,
        )
        context["config"]["preview"] = {
            "checkUrl": url,
            "checking": gettext("Checking the answers…"),
        }
        context["banners"] = _banners()
        return render(request, "surveys/form/preview.html", context, status=status)


def _result(version: FormVersion, answers: dict[str, Any], language: str) -> str:
    """What a real submission would have stored, as the researchers' pages show it."""
    with translation.override(interface_language(language)):
        return render_to_string(
            "surveys/form/preview_result.html",
            {
                "rows": labelled_answers(version.definition, answers, language),
                "banners": _banners(),
                "language": language,
            },
        )


def _check_json(request: HttpRequest, version: FormVersion) -> JsonResponse:
    try:
        payload = bounded_json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        payload = None
    language = _language(
        request, version, payload.get("language") if isinstance(payload, dict) else ""
    )
    with translation.override(interface_language(language)):
        if not isinstance(payload, dict):
            message = gettext("The answers could not be read.")
            return JsonResponse({"code": "bad_request", "message": message}, status=400)
        try:
            clean = validate_answers(version.definition, payload.get("answers"), language=language)
        except AnswerErrors as exc:
            message = gettext("Please correct the answers marked below.")
            return JsonResponse(
                {"code": "answers", "message": message, "errors": exc.errors}, status=400
            )
        return JsonResponse(
            {"code": "valid", "html": _result(version, clean.answers, language)}, status=200
        )


def _check_html(request: HttpRequest, version: FormVersion, url: str) -> HttpResponse:
    """The same check from the plain HTML form (a browser without JavaScript)."""
    language = _language(request, version, request.POST.get("_language", ""))
    answers = posted_answers(request.POST, version.definition)
    if "_add" in request.POST:
        return _render(request, version, url, language, values=answers)
    try:
        clean = validate_answers(version.definition, answers, language=language)
    except AnswerErrors as exc:
        return _render(
            request, version, url, language, values=answers, errors=exc.errors, status=400
        )
    with translation.override(interface_language(language)):
        return render(
            request,
            "surveys/form/preview_checked.html",
            {
                "rows": labelled_answers(version.definition, clean.answers, language),
                "banners": _banners(),
                "language": language,
                "title": form_title(version.definition, language, version.title),
            },
        )
