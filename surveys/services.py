"""Writes for surveys: importing questionnaires, opening waves, links and interviews.

Every function is keyword-only and runs in one transaction, so a failure writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from surveys.definition import iter_questions
from surveys.models import (
    Channel,
    FormVersion,
    InvitationLink,
    LinkKind,
    Region,
    Submission,
    Survey,
    Wave,
)
from surveys.validation import AnswerErrors, validate_answers
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
    from analytics.services import mark_wave_dirty

    with transaction.atomic():
        wave, created = Wave.objects.update_or_create(
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
        if created:  # a new wave changes the comparisons between waves
            transaction.on_commit(lambda: mark_wave_dirty(wave_id=wave.pk))
    return wave


# --------------------------------------------------------------------------- interviews

# A real interview of this instrument is about 2 KB of JSON; this leaves room for long forms.
MAX_ANSWERS_BYTES = 200_000
WEB_PSU_PREFIX = "WEB-"


class SubmissionRefused(Exception):
    """An interview that cannot be stored for a reason other than its answers.

    ``code`` is stable for programs (``wave_closed``, ``no_form``, ``link_revoked``,
    ``link_used``, ``link_wave``, ``instance_conflict``, ``too_large``, ``language``,
    ``design``); ``message`` is for people, in the interview's language.
    """

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def create_links(
    *, wave: Wave, kind: str, count: int = 1, created_by: Any = None, label: str = ""
) -> list[InvitationLink]:
    """Create ``count`` anonymous links to the wave's web questionnaire (one transaction)."""
    if kind not in LinkKind.values:
        raise ValueError(f"unknown link kind {kind!r}")
    if not 1 <= count <= 10_000:
        raise ValueError("create between 1 and 10000 links at a time")
    with transaction.atomic():
        return InvitationLink.objects.bulk_create(
            [
                InvitationLink(wave=wave, kind=kind, created_by=created_by, label=label)
                for _ in range(count)
            ]
        )


def revoke_links(*, links: Iterable[InvitationLink]) -> int:
    """Revoke links not yet revoked. Interviews already received through them stay."""
    ids = [link.pk for link in links]
    with transaction.atomic():
        return InvitationLink.objects.filter(pk__in=ids, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )


def submit_interview(
    *,
    wave: Wave,
    answers: Any,
    channel: str,
    language: str,
    instance_id: uuid.UUID | str,
    form_version: FormVersion | None = None,
    started_at: dt.datetime | None = None,
    ended_at: dt.datetime | None = None,
    device_id: str = "",
    user_agent_class: str = "",
    enumerator: Any = None,
    link: InvitationLink | None = None,
    design: dict[str, Any] | None = None,
) -> Submission:
    """Validate and store one interview, from any channel (web, tablet, ODK client).

    - Answers are checked by `surveys.validation.validate_answers` (AnswerErrors on failure,
      messages in ``language``); other refusals raise SubmissionRefused. Nothing is stored
      unless everything passes.
    - Idempotent on ``instance_id``: a retry with the same answers returns the stored
      interview; different answers under an existing id are refused (``instance_conflict``).
    - Design fields: ``design`` may give ``region`` (a Region or its code), ``urban_rural``,
      ``stratum``, ``psu`` and ``weight``. What it does not give is derived from the answers:
      the region from REGION (on a 2013-geography wave, the current unit's 2013 unit), urban
      or rural from URBAN, stratum = region code + ``-U``/``-R``. A self-completed web
      interview is not clustered: each is its own PSU (``WEB-<instance id>``), weight 1
      until calibration.
    - A web interview needs an open wave. Tablet and ODK interviews were collected offline
      and are accepted after the wave closes, so a late sync loses nothing.
    - A single-use link is marked used in the same transaction. No IP address is stored.
    - After commit the wave is marked dirty for indicator recomputation.
    """
    from analytics.services import mark_wave_dirty

    if language not in {"kk", "ru", "en"}:
        raise SubmissionRefused("language", f"unsupported interview language {language!r}")
    with translation.override(language):
        _check_input_values(
            answers=answers, started_at=started_at, ended_at=ended_at, device_id=device_id
        )
        try:
            instance = uuid.UUID(str(instance_id))
        except ValueError:
            raise SubmissionRefused(
                "instance_id", gettext("The interview identifier is not valid.")
            ) from None
        try:
            size = len(json.dumps(answers, ensure_ascii=False, default=str).encode())
        except (TypeError, ValueError):
            size = MAX_ANSWERS_BYTES + 1
        if size > MAX_ANSWERS_BYTES:
            raise SubmissionRefused(
                "too_large",
                gettext("The answers are too large to be accepted (more than %(kb)d KB).")
                % {"kb": MAX_ANSWERS_BYTES // 1000},
            )
        version = form_version or wave.form_version
        if version is None or version.survey_id != wave.survey_id:
            raise SubmissionRefused(
                "no_form", gettext("This survey wave has no questionnaire to answer.")
            )
        if link is not None and link.wave_id != wave.pk:
            raise SubmissionRefused("link_wave", gettext("This link belongs to another survey."))
        if channel == Channel.WEB and not wave.is_open:
            raise SubmissionRefused(
                "wave_closed", gettext("This survey is closed and no longer accepts answers.")
            )
        if channel not in Channel.values:
            raise SubmissionRefused("channel", f"unknown channel {channel!r}")
        if language not in version.languages and version.languages != ["default"]:
            raise SubmissionRefused(
                "language", gettext("The questionnaire is not available in this language.")
            )
        clean = validate_answers(version.definition, answers, language=language)
        fields = _design_fields(wave, clean.answers, design or {}, instance)

        existing = Submission.objects.filter(instance_id=instance).first()
        if existing is not None:
            return _same_or_conflict(existing, wave, clean.answers)
        duration = None
        if started_at is not None and ended_at is not None:
            if ended_at >= started_at:
                duration = int((ended_at - started_at).total_seconds())
            else:  # a device clock set wrong: keep the start, drop what cannot be true
                ended_at = None
        try:
            with transaction.atomic():
                if link is not None:
                    _claim_link(link, instance)
                submission = Submission.objects.create(
                    instance_id=instance,
                    form_version=version,
                    wave=wave,
                    channel=channel,
                    language=language,
                    answers=clean.answers,
                    started_at=started_at,
                    ended_at=ended_at,
                    duration_seconds=duration,
                    device_id=device_id[:128],
                    user_agent_class=user_agent_class[:16],
                    enumerator=enumerator,
                    **fields,
                )
                if link is not None and link.is_single_use:
                    InvitationLink.objects.filter(pk=link.pk).update(
                        used_at=submission.received_at, submission=submission
                    )
                transaction.on_commit(lambda: mark_wave_dirty(wave_id=wave.pk))
        except IntegrityError:
            # The same instance id arrived twice at once: the other request stored it.
            existing = Submission.objects.filter(instance_id=instance).first()
            if existing is None:
                raise
            return _same_or_conflict(existing, wave, clean.answers)
    return submission


# Interview times outside this window are refused: no interview of the platform predates it,
# and a clock ahead by more than a day is wrong, not in another time zone.
EARLIEST_INTERVIEW = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
FUTURE_TOLERANCE = dt.timedelta(days=1)


def _check_input_values(*, answers: Any, started_at: Any, ended_at: Any, device_id: Any) -> None:
    """Refuse values no database stores faithfully: NUL characters in text (PostgreSQL
    refuses them) and times outside a plausible window (a year-1 start made a duration of
    63 billion seconds). Messages are in the active language."""
    texts: list[Any] = [answers, device_id]
    while texts:
        value = texts.pop()
        if isinstance(value, str):
            found = "\x00" in value
        elif isinstance(value, dict):
            found = any(isinstance(key, str) and "\x00" in key for key in value)
            texts.extend(value.values())
        elif isinstance(value, list | tuple):
            found = False
            texts.extend(value)
        else:
            found = False
        if found:
            raise SubmissionRefused(
                "nul_character",
                gettext("The answers contain a NUL character, which cannot be stored."),
            )
    latest = timezone.now() + FUTURE_TOLERANCE
    for moment in (started_at, ended_at):
        if moment is None:
            continue
        if not isinstance(moment, dt.datetime):
            raise SubmissionRefused("timestamp", gettext("The interview times are not valid."))
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, dt.UTC)
        if not EARLIEST_INTERVIEW <= moment <= latest:
            raise SubmissionRefused(
                "timestamp",
                gettext(
                    "The interview times are not plausible: they must fall between 2000-01-01 "
                    "and tomorrow. Check the date and time of the device."
                ),
            )


def _same_or_conflict(existing: Submission, wave: Wave, answers: dict[str, Any]) -> Submission:
    if existing.wave_id == wave.pk and existing.answers == answers:
        return existing
    raise SubmissionRefused(
        "instance_conflict",
        gettext("An interview with this identifier was already received with other answers."),
    )


def _claim_link(link: InvitationLink, instance: uuid.UUID) -> None:
    """Lock the link row and check it still admits this interview."""
    current = InvitationLink.objects.select_for_update().get(pk=link.pk)
    if current.revoked_at is not None:
        raise SubmissionRefused("link_revoked", gettext("This link has been withdrawn."))
    if current.is_single_use and current.used_at is not None:
        raise SubmissionRefused("link_used", gettext("This invitation has already been used."))


def _design_fields(
    wave: Wave, answers: dict[str, Any], design: dict[str, Any], instance: uuid.UUID
) -> dict[str, Any]:
    unknown = set(design) - {"region", "urban_rural", "stratum", "psu", "weight"}
    if unknown:
        raise SubmissionRefused("design", f"unknown design fields: {', '.join(sorted(unknown))}")
    region = design.get("region")
    if region is None:
        region = _region_from_answer(wave, answers.get("REGION"))
    elif not isinstance(region, Region):
        region = Region.objects.filter(geography=wave.geography, code=str(region)).first()
    if region is None or region.geography != wave.geography:
        raise AnswerErrors({"REGION": [gettext("Choose the region where you live.")]})
    urban_rural = design.get("urban_rural", answers.get("URBAN"))
    if urban_rural not in (1, 2):
        raise AnswerErrors({"SETTLEMENT": [gettext("Choose the type of settlement.")]})
    weight = float(design.get("weight", 1.0))
    if not weight > 0:
        raise SubmissionRefused("design", "the design weight must be positive")
    return {
        "region": region,
        "urban_rural": urban_rural,
        "stratum": str(
            design.get("stratum") or f"{region.code}-{'U' if urban_rural == 1 else 'R'}"
        ),
        "psu": str(design.get("psu") or f"{WEB_PSU_PREFIX}{instance}"),
        "weight": weight,
    }


def _region_from_answer(wave: Wave, code: Any) -> Region | None:
    """The wave-geography region for a REGION answer (a current ISO code, or a 2013 one)."""
    if not isinstance(code, str) or not code:
        return None
    region = Region.objects.filter(geography=wave.geography, code=code).first()
    if region is None and wave.geography == "KZ2013":
        current = Region.objects.filter(geography="KZ2022", code=code).select_related("unit_2013")
        region = next((r.unit_2013 for r in current), None)
    return region
