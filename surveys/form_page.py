"""The template context of a questionnaire page, the one builder of the respondent web form
(`surveys.webform_views`) and of its preview (`surveys.preview_views`).

Both render ``surveys/form/questionnaire.html`` (the preview through a template that
extends it) with the same pages, entry templates, configuration for ``form.js`` and error
summary; each caller adds what only it has (the link; the preview's banners and check URL).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from surveys.models import FormVersion
from surveys.validation import FORM_ERRORS, TEXT_MAX_LENGTH
from surveys.webform import (
    LANGUAGE_NAMES,
    assigned_values,
    build_pages,
    client_logic,
    entry_templates,
    error_links,
    form_title,
    interface_messages,
)


def page_context(
    version: FormVersion,
    language: str,
    *,
    token: str,
    explicit_language: bool,
    single: bool,
    submit_url: str,
    thanks_url: str = "",
    service_worker: str = "",
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    instance_id: str = "",
    halves: dict[str, int] | None = None,
    started_at: str = "",
) -> dict[str, Any]:
    """The context of a page of ``version`` in ``language``; call it in the interface
    language (``translation.override``), as its texts are translated here.

    With ``instance_id`` the page belongs to that interview: its random assignments (and
    the balanced slots ``halves``) are drawn for it, only the drawn arm is rendered, and
    ``form.js`` starts its draft from them (``draws``). Without, as in the preview, the
    page holds every arm and ``form.js`` draws in the browser.
    """
    definition = version.definition
    pages = build_pages(
        definition, language, values, errors, instance_id=instance_id or None, halves=halves
    )
    config: dict[str, Any] = {
        "token": token,
        "lang": language,
        "explicitLang": explicit_language,
        "single": single,
        "submitUrl": submit_url,
        "thanksUrl": thanks_url,
        "serviceWorker": service_worker,
        "logic": client_logic(definition, language),
        "messages": interface_messages(),
        "textMax": TEXT_MAX_LENGTH,
    }
    if instance_id:
        # the random assignments drawn for this page's interview, the ones it shows
        config["draws"] = assigned_values(definition, instance_id, halves)
    return {
        "title": form_title(definition, language, version.title),
        "language": language,
        "languages": [
            (
                code,
                LANGUAGE_NAMES.get(code) or definition.get("language_names", {}).get(code, code),
            )
            for code in version.languages
            if code != "default"
        ],
        "pages": pages,
        "templates": entry_templates(definition, language),
        "config": config,
        "form_errors": (errors or {}).get(FORM_ERRORS, []),
        "error_links": error_links(pages, errors or {}),
        "has_errors": bool(errors),
        "instance_id": instance_id,
        "started_at": started_at or timezone.now().isoformat(),
    }
