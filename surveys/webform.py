"""The respondent web questionnaire at /s/<token>/: pages, submission and thank-you page.

The page is rendered on the server in one language, with every question in the HTML
(labels bound to inputs), and works as a plain HTML form without JavaScript. With
JavaScript, `surveys/static/surveys/form.js` turns groups into pages, evaluates the
compiled skip logic, constraints and calculations live (`expressions.js`), keeps the
answers in localStorage and sends them as JSON with a client-made instance id. Changing
language reloads the page in the other language; the answers come back from
localStorage, so nothing is lost.

Duplicate policy for public links: a browser keeps one instance id per link until it has
submitted; a retry with that id stores nothing new, and the browser then remembers that
it took part and says so when the link is opened again (with a button for another person
on a shared device). A public link cannot stop one person answering from two browsers;
use single-use invitations when that matters.

Privacy: nothing here records the respondent's IP address or the full user-agent string,
only a coarse device class (phone, tablet, desktop).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from surveys.definition import interface_language, stored_choice_value
from surveys.models import Channel, InvitationLink, pick_translation
from surveys.selectors import link_for_token
from surveys.services import MAX_ANSWERS_BYTES, SubmissionRefused, submit_interview
from surveys.validation import FORM_ERRORS, TEXT_MAX_LENGTH, AnswerErrors

LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}
REFUSAL_STATUS = {
    "wave_closed": 410,
    "link_used": 410,
    "link_revoked": 410,
    "instance_conflict": 409,
    "too_large": 413,
}


def user_agent_class(user_agent: str) -> str:
    """'phone', 'tablet' or 'desktop' from a User-Agent header; '' when there is none."""
    ua = user_agent.lower()
    if not ua:
        return ""
    if "ipad" in ua or "tablet" in ua or ("android" in ua and "mobile" not in ua):
        return "tablet"
    if "mobi" in ua or "iphone" in ua or "android" in ua:
        return "phone"
    return "desktop"


# --------------------------------------------------------------------------- pages


@dataclass
class Item:
    """A question or note as the template renders it."""

    name: str
    type: str
    label: str
    hint: str
    required: bool
    choices: list[tuple[str, str]] = field(default_factory=list)
    appearance: str = ""
    value: Any = None
    errors: list[str] = field(default_factory=list)

    @property
    def input_id(self) -> str:
        return f"f-{self.name}"

    @property
    def selected(self) -> list[str]:
        if self.value is None:
            return []
        return [str(v) for v in self.value] if isinstance(self.value, list) else [str(self.value)]


@dataclass
class Page:
    number: int
    title: str
    section: str
    items: list[Item]


def build_pages(
    definition: dict[str, Any],
    language: str,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> list[Page]:
    """The form as pages: a field-list group is one page, any other question its own page.

    Without field-list groups and without ``style=pages`` the whole form is one page.
    Groups that are not field lists give their label to their pages as a section title.
    """
    values = values or {}
    errors = errors or {}

    def text(texts: dict[str, str] | None) -> str:
        return pick_translation(texts, language)

    def item(node: dict[str, Any]) -> Item:
        choices = [
            (c["name"], text(c["label"]) or c["name"])
            for c in definition["choices"].get(node.get("list_name") or "", [])
        ]
        return Item(
            name=node["name"],
            type=node["type"],
            label=text(node.get("label")),
            hint=text(node.get("hint")),
            required=node.get("required") is True,
            choices=choices,
            appearance=node.get("appearance", ""),
            value=values.get(node["name"]),
            errors=errors.get(node["name"], []),
        )

    def visible(nodes: list[dict[str, Any]]) -> list[Item]:
        found = []
        for node in nodes:
            if node["kind"] == "group":
                found.extend(visible(node.get("children", [])))
            elif node["kind"] == "question" and node["type"] != "calculate":
                found.append(item(node))
        return found

    paged = definition.get("style") == "pages" or any(
        "field-list" in node.get("appearance", "")
        for node in _walk_groups(definition.get("children", []))
    )
    if not paged:
        return [Page(1, "", "", visible(definition.get("children", [])))]
    pages: list[Page] = []

    def collect(nodes: list[dict[str, Any]], section: str) -> None:
        for node in nodes:
            if node["kind"] == "group" and "field-list" in node.get("appearance", ""):
                pages.append(
                    Page(len(pages) + 1, text(node.get("label")), section, visible([node]))
                )
            elif node["kind"] == "group":
                collect(node.get("children", []), text(node.get("label")) or section)
            elif node["kind"] == "question" and node["type"] != "calculate":
                pages.append(Page(len(pages) + 1, "", section, [item(node)]))

    collect(definition.get("children", []), "")
    return pages


def _walk_groups(nodes: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    for node in nodes:
        if node["kind"] in {"group", "repeat"}:
            yield node
            yield from _walk_groups(node.get("children", []))


def client_logic(definition: dict[str, Any], language: str) -> dict[str, Any]:
    """What form.js needs to walk the form as `surveys.validation` does, in one language."""

    def text(texts: dict[str, str] | None) -> str:
        return pick_translation(texts, language)

    def node(n: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"k": n["kind"][0], "n": n["name"], "t": n["type"]}
        for key, short in (
            ("relevant", "r"),
            ("required", "q"),
            ("constraint", "c"),
            ("calculation", "x"),
            ("choice_filter", "f"),
        ):
            if n.get(key) not in (None, False):
                out[short] = n[key]
        if n.get("list_name"):
            out["l"] = n["list_name"]
        if text(n.get("constraint_message")):
            out["cm"] = text(n.get("constraint_message"))
        if text(n.get("required_message")):
            out["rm"] = text(n.get("required_message"))
        if n.get("children"):
            out["ch"] = [node(c) for c in n["children"]]
        return out

    filtered = {n.get("list_name") for n in _walk_all(definition) if n.get("choice_filter")}
    return {
        "nodes": [node(n) for n in definition.get("children", [])],
        "lists": {
            name: [{"name": c["name"], **c.get("columns", {})} for c in choices]
            for name, choices in definition.get("choices", {}).items()
            if name in filtered
        },
        "intCodes": sorted(
            name
            for name, choices in definition.get("choices", {}).items()
            if choices and all(isinstance(stored_choice_value(c["name"]), int) for c in choices)
        ),
    }


def _walk_all(definition: dict[str, Any]):  # type: ignore[no-untyped-def]
    stack = list(definition.get("children", []))
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.get("children", []))


def interface_messages() -> dict[str, str]:
    """Interface strings form.js shows, in the active language."""
    return {
        "required": gettext("This question requires an answer."),
        "constraint": gettext("This answer is not accepted; please check it."),
        "integer": gettext("Enter a whole number."),
        "decimal": gettext("Enter a number."),
        "date": gettext("Enter a date as YYYY-MM-DD."),
        "choice": gettext("Choose one of the options offered."),
        "tooLong": gettext("Keep the answer under %(limit)d characters.")
        % {"limit": TEXT_MAX_LENGTH},
        "summary": gettext("Please correct the answers marked below."),
        "page": gettext("Page %(page)s of %(pages)s"),
        "sending": gettext("Sending your answers…"),
        "offline": gettext(
            "Your answers could not be sent. They are saved on this device; check the connection and press Submit again."
        ),
        "refused": gettext("The answers could not be accepted."),
    }


# --------------------------------------------------------------------------- views


def _language(request: HttpRequest, languages: list[str], default: str) -> str:
    wanted = request.GET.get("lang", "")
    usable = languages or ["default"]
    if wanted in usable:
        return wanted
    return default if default in usable else usable[0]


def _unavailable(request: HttpRequest, reason: str, status: int) -> HttpResponse:
    """A clear page in Kazakh, Russian and English: a respondent may not read the first."""
    blocks = []
    for code in ("kk", "ru", "en"):
        with translation.override(code):
            titles = {
                "unknown": gettext("This survey link is not valid"),
                "closed": gettext("This survey is closed"),
                "revoked": gettext("This survey link has been withdrawn"),
                "used": gettext("This invitation has already been used"),
            }
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
            blocks.append({"lang": code, "title": titles[reason], "text": texts[reason]})
    response = render(
        request,
        "surveys/form/unavailable.html",
        {"blocks": blocks, "reason": reason},
        status=status,
    )
    response.reason = reason  # type: ignore[attr-defined]
    return response


def _check_link(
    request: HttpRequest, token: str
) -> tuple[InvitationLink | None, HttpResponse | None]:
    link = link_for_token(token)
    if link is None or link.wave.form_version is None:
        return None, _unavailable(request, "unknown", 404)
    if link.revoked_at is not None:
        return None, _unavailable(request, "revoked", 410)
    if link.is_single_use and link.used_at is not None:
        return None, _unavailable(request, "used", 410)
    if not link.wave.is_open:
        return None, _unavailable(request, "closed", 410)
    return link, None


def _json_unavailable(request: HttpRequest, refusal: HttpResponse) -> JsonResponse:
    """The refusal of a link or wave for form.js, in the language the page was in."""
    reason = getattr(refusal, "reason", "unknown")
    try:
        language = json.loads(request.body).get("language")
    except (ValueError, AttributeError, UnicodeDecodeError):
        language = None
    with translation.override(interface_language(language if isinstance(language, str) else "kk")):
        messages = {
            "unknown": gettext("This survey link is not valid"),
            "closed": gettext("This survey is closed and no longer accepts answers."),
            "revoked": gettext("This link has been withdrawn."),
            "used": gettext("This invitation has already been used."),
        }
        return JsonResponse(
            {"code": reason, "message": messages[reason]}, status=refusal.status_code
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
    definition = version.definition
    with translation.override(interface_language(language)):
        pages = build_pages(definition, language, values, errors)
        config = {
            "token": link.token,
            "lang": language,
            "explicitLang": "lang" in request.GET,
            "single": link.is_single_use,
            "submitUrl": reverse("surveys:questionnaire", args=[link.token]),
            "thanksUrl": reverse("surveys:thanks", args=[link.token]) + f"?lang={language}",
            "logic": client_logic(definition, language),
            "messages": interface_messages(),
            "textMax": TEXT_MAX_LENGTH,
        }
        context = {
            "link": link,
            "title": pick_translation({"default": version.title}, language),
            "language": language,
            "languages": [
                (
                    code,
                    LANGUAGE_NAMES.get(code)
                    or definition.get("language_names", {}).get(code, code),
                )
                for code in version.languages
                if code != "default"
            ],
            "pages": pages,
            "config": config,
            "form_errors": (errors or {}).get(FORM_ERRORS, []),
            "has_errors": bool(errors),
            "instance_id": instance_id or str(uuid.uuid4()),
            "started_at": started_at or timezone.now().isoformat(),
        }
        return render(request, "surveys/form/questionnaire.html", context, status=status)


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
        payload = json.loads(request.body)
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
    return JsonResponse({"code": "stored", "redirect": thanks})


def _submit_html(request: HttpRequest, link: InvitationLink) -> HttpResponse:
    """The same submission from the plain HTML form (a browser without JavaScript)."""
    version = link.wave.form_version
    assert version is not None
    language = request.POST.get("_language", "")
    if language not in version.languages:
        language = version.default_language
    answers: dict[str, Any] = {}
    for name, question in version.questions.items():
        if question["type"] == "select_multiple":
            chosen = request.POST.getlist(name)
            if chosen:
                answers[name] = chosen
        elif question["type"] not in {"note", "calculate"} and request.POST.get(name, "") != "":
            answers[name] = request.POST[name]
    instance_id = request.POST.get("_instance_id", "")
    started_at = request.POST.get("_started_at", "")
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
    return redirect(reverse("surveys:thanks", args=[link.token]) + f"?lang={language}")


@require_GET
def thanks(request: HttpRequest, token: str) -> HttpResponse:
    link = link_for_token(token)
    if link is None or link.wave.form_version is None:
        return _unavailable(request, "unknown", 404)
    version = link.wave.form_version
    language = _language(request, version.languages, version.default_language)
    with translation.override(interface_language(language)):
        return render(
            request,
            "surveys/form/thanks.html",
            {"language": language, "title": version.title, "token": link.token},
        )
