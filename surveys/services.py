"""Writes for surveys: importing questionnaires and opening waves.

Every function is keyword-only and runs in one transaction, so a failure writes nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.core.files.base import ContentFile
from django.db import transaction

from surveys.definition import iter_questions
from surveys.models import FormVersion, Survey, Wave
from surveys.xlsform import CompiledForm, Problem, XLSFormError, compile_xlsform


def import_xlsform(
    *, survey_code: str, content: bytes, filename: str, survey_title: str | None = None
) -> tuple[FormVersion, bool]:
    """Compile and store a questionnaire version. Returns (version, created).

    Importing the same file (or the same version with identical content) again returns the
    stored version. A different workbook under an existing version string is refused, and
    so is a question whose type differs from an earlier version's: old interviews must keep
    their meaning.
    """
    compiled = compile_xlsform(content, filename=filename)
    with transaction.atomic():
        survey, _ = Survey.objects.select_for_update().get_or_create(
            code=survey_code, defaults={"title": survey_title or compiled.title}
        )
        existing = FormVersion.objects.filter(survey=survey, version=compiled.version).first()
        if existing is not None:
            if (
                existing.xlsform_sha256 == compiled.sha256
                or existing.definition == compiled.definition
            ):
                return existing, False
            raise XLSFormError(
                [
                    Problem(
                        "settings",
                        None,
                        "version",
                        f"version '{compiled.version}' of survey '{survey_code}' was already imported with "
                        "different content; give the changed form a new version.",
                    )
                ]
            )
        _refuse_type_changes(survey, compiled)
        version = FormVersion(
            survey=survey,
            version=compiled.version,
            form_id=compiled.form_id,
            title=compiled.title,
            languages=compiled.languages,
            default_language=compiled.default_language,
            definition=compiled.definition,
            xlsform_sha256=compiled.sha256,
            import_warnings=compiled.warnings,
        )
        version.xlsform.save(
            f"{survey_code}-{compiled.version}-{Path(filename).name}",
            ContentFile(content),
            save=False,
        )
        version.save()
    return version, True


def _refuse_type_changes(survey: Survey, compiled: CompiledForm) -> None:
    new_types = {q["name"]: q["type"] for q in iter_questions(compiled.definition)}
    problems: dict[str, Problem] = {}
    for earlier in survey.form_versions.order_by("created_at"):
        for question in iter_questions(earlier.definition):
            name, new_type = question["name"], new_types.get(question["name"])
            if new_type is not None and new_type != question["type"] and name not in problems:
                problems[name] = Problem(
                    "survey",
                    None,
                    "type",
                    f"question '{name}' is {question['type']} in version '{earlier.version}' "
                    f"but {new_type} here; changing a question's type is refused, give it a new name.",
                )
    if problems:
        raise XLSFormError(list(problems.values()))


def open_wave(
    *,
    survey: Survey,
    code: str,
    geography: str,
    form_version: FormVersion | None = None,
    title: str = "",
    fieldwork_start: dt.date | None = None,
    fieldwork_end: dt.date | None = None,
    is_open: bool = True,
    is_synthetic: bool = False,
) -> Wave:
    """Create the wave, or update its settings when it exists (idempotent by survey and code)."""
    with transaction.atomic():
        wave, _ = Wave.objects.update_or_create(
            survey=survey,
            code=code,
            defaults={
                "geography": geography,
                "form_version": form_version,
                "title": title,
                "fieldwork_start": fieldwork_start,
                "fieldwork_end": fieldwork_end,
                "is_open": is_open,
                "is_synthetic": is_synthetic,
            },
        )
    return wave
