"""Writes for surveys: importing questionnaires, opening waves, links and interviews,
reviewing and deleting interviews.

Every function is keyword-only and runs in one transaction, so a failure writes nothing.
Writes a person makes (uploads, links, review decisions, deletions) are recorded in the
audit trail (`audit.services.record`) in that same transaction. Every client calls these
functions: the admin, the web form, the API and the management commands.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from audit.models import AuditAction, AuditEvent
from audit.services import record
from surveys.admission import SubmissionRefused, admission_refusal
from surveys.definition import iter_questions
from surveys.interview_checks import MAX_ANSWERS_BYTES as MAX_ANSWERS_BYTES
from surveys.interview_checks import checked_interview
from surveys.models import (
    FormVersion,
    InvitationLink,
    LinkKind,
    ReviewStatus,
    Submission,
    Survey,
    Wave,
    new_link_token,
    validate_estimate_statuses,
)
from surveys.xlsform import CompiledForm, Problem, XLSFormError, compile_xlsform


def import_xlsform(
    *,
    survey_code: str,
    content: bytes,
    filename: str,
    survey_title: str | None = None,
    uploaded_by: Any = None,
) -> tuple[FormVersion, bool]:
    """Compile and store a questionnaire version. Returns (version, created).

    Importing the same file (or the same version with identical content) again returns the
    stored version. A different workbook under an existing version string is refused, and
    so is a question whose type differs from an earlier version's: old interviews must keep
    their meaning. A stored version is recorded with its uploader (``uploaded_by``; None
    for a command run on the server), file name and SHA-256.
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
        record(
            actor=uploaded_by,
            action=AuditAction.FORM_UPLOADED,
            obj=version,
            survey_id=survey.pk,
            new={"version": version.version, "sha256": compiled.sha256},
            detail={
                "survey": survey.code,
                "file_name": Path(filename).name,
                "sha256": compiled.sha256,
                "version": version.version,
                "form_id": version.form_id,
            },
        )
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


def save_wave(*, wave: Wave) -> Wave:
    """Store a wave edited as a whole (the admin's form) and recompute its estimates after
    commit: its geography, dates or questionnaire may have changed, and with them its
    regions and its comparisons with other waves."""
    from analytics.services import mark_wave_dirty

    with transaction.atomic():
        wave.save()
        transaction.on_commit(lambda: mark_wave_dirty(wave_id=wave.pk))
    return wave


# --------------------------------------------------------------------------- links


def create_links(
    *, wave: Wave, kind: str, count: int = 1, created_by: Any = None, label: str = ""
) -> list[InvitationLink]:
    """Create ``count`` anonymous links to the wave's web questionnaire (one transaction).

    Recorded: who created how many links of which kind for which wave (never the tokens,
    nor the label, which may name the people a batch went to)."""
    _event, links = create_link_batch(
        wave=wave, kind=kind, count=count, created_by=created_by, label=label
    )
    return links


def create_link_batch(
    *, wave: Wave, kind: str, count: int = 1, created_by: Any = None, label: str = ""
) -> tuple[AuditEvent, list[InvitationLink]]:
    """`create_links`, also returning the audit event that records the batch: its id names
    the batch afterwards (the event lists the links' ids)."""
    if kind not in LinkKind.values:
        raise ValueError(f"unknown link kind {kind!r}")
    if not 1 <= count <= 10_000:
        raise ValueError("create between 1 and 10000 links at a time")
    user = created_by if getattr(created_by, "is_authenticated", False) else None
    with transaction.atomic():
        links = InvitationLink.objects.bulk_create(
            [
                InvitationLink(wave=wave, kind=kind, created_by=user, label=label)
                for _ in range(count)
            ]
        )
        event = record(
            actor=created_by,
            action=AuditAction.LINKS_CREATED,
            obj=wave,
            survey_id=wave.survey_id,
            detail={"wave": wave.pk, "kind": kind, "count": len(links), "ids": _pks(links)},
        )
    return event, links


def revoke_links(*, links: Iterable[InvitationLink], actor: Any = None) -> int:
    """Revoke links not yet revoked. Interviews already received through them stay.

    Returns how many were revoked; recorded per survey, with their ids."""
    ids = _pks(links)
    with transaction.atomic():
        rows = list(
            InvitationLink.objects.select_for_update(of=("self",))
            .filter(pk__in=ids, revoked_at__isnull=True)
            .values_list("pk", "wave_id", "wave__survey_id")
            .order_by("pk")
        )
        InvitationLink.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(
            revoked_at=timezone.now()
        )
        _record_per_survey(rows, action=AuditAction.LINKS_REVOKED, actor=actor)
    return len(rows)


def _record_per_survey(
    rows: Iterable[tuple[int, int, int]], *, action: AuditAction, actor: Any
) -> None:
    """One event per survey for links acted on together: their ids and waves, no tokens."""
    for survey_id, group in _by_survey(rows).items():
        record(
            actor=actor,
            action=action,
            object_type=InvitationLink._meta.label_lower,
            survey_id=survey_id,
            detail={
                "ids": [pk for pk, _ in group],
                "waves": sorted({wave for _, wave in group}),
                "count": len(group),
            },
        )


def rotate_link_tokens(
    *, links: Iterable[InvitationLink], actor: Any = None
) -> list[InvitationLink]:
    """Give links a new token: the old address stops working, the link (its wave, kind,
    label and the interviews it took) stays. For a link that reached the wrong hands.

    Revoked links and used single-use links keep theirs (they take nothing more).
    Returns the links with their new tokens; recorded per survey, without the tokens."""
    ids = _pks(links)
    with transaction.atomic():
        rotated = list(
            InvitationLink.objects.select_for_update(of=("self",))
            .active()
            .filter(pk__in=ids)
            .select_related("wave__survey")
            .order_by("pk")
        )
        for link in rotated:
            link.token = new_link_token()
        InvitationLink.objects.bulk_update(rotated, ["token"])
        rows = [(link.pk, link.wave_id, link.wave.survey_id) for link in rotated]
        _record_per_survey(rows, action=AuditAction.LINKS_ROTATED, actor=actor)
    return rotated


def _pks(objects: Iterable[Any]) -> list[int]:
    """Primary keys of model instances (or of the rows of a queryset), sorted."""
    if hasattr(objects, "values_list"):
        return sorted(objects.values_list("pk", flat=True))  # type: ignore[union-attr]
    return sorted({int(getattr(o, "pk", o)) for o in objects})


def _by_survey(rows: Iterable[tuple[int, int, int]]) -> dict[int, list[tuple[int, int]]]:
    """(id, wave id, survey id) rows grouped by survey: one audit event per survey, so the
    trail can be read survey by survey."""
    grouped: dict[int, list[tuple[int, int]]] = {}
    for pk, wave_id, survey_id in rows:
        grouped.setdefault(survey_id, []).append((pk, wave_id))
    return grouped


# --------------------------------------------------------------------------- review


def review_interviews(
    *,
    submissions: Iterable[Submission] | Iterable[int],
    status: str,
    actor: Any,
    comment: str = "",
    question_comments: dict[str, str] | None = None,
) -> int:
    """Record a review decision on interviews: approve, reject (a rejected tablet or ODK
    interview goes back to its enumerator with the comments) or return to pending.

    Sets the status, who decided and when, the comment on the whole interview and the
    comments per question (question name to text; names the interview's questionnaire
    does not have are refused). Interviews the decision does not change are left alone.
    The waves whose interviews changed status are recomputed after commit (which review
    statuses count is the survey's ``estimate_statuses``). Recorded as one event per
    survey of the batch: the ids, their old statuses and the new one. Returns how many
    interviews changed.
    """
    if status not in ReviewStatus.values:
        raise ValueError(f"unknown review status {status!r}")
    comment = (comment or "").strip()
    notes = _question_comments(question_comments)
    user = actor if getattr(actor, "is_authenticated", False) else None
    ids = _pks(submissions)
    with transaction.atomic():
        rows = list(
            Submission.objects.select_for_update(of=("self",))
            .filter(pk__in=ids)
            .select_related("form_version", "wave")
            .order_by("pk")
        )
        for row in rows:
            unknown = sorted(set(notes) - set(row.form_version.questions))
            if unknown:
                raise ValueError(
                    f"interview {row.pk} has no question named {', '.join(map(repr, unknown))}"
                )
        changed = [
            row
            for row in rows
            if row.review_status != status
            or row.review_comment != comment
            or row.question_comments != notes
        ]
        now = timezone.now()
        old = {row.pk: row.review_status for row in changed}
        for row in changed:
            row.review_status, row.review_comment, row.question_comments = status, comment, notes
            row.reviewed_by, row.reviewed_at = user, now
        Submission.objects.bulk_update(
            changed,
            ["review_status", "review_comment", "question_comments", "reviewed_by", "reviewed_at"],
        )
        grouped = _by_survey((row.pk, row.wave_id, row.wave.survey_id) for row in changed)
        for survey_id, group in grouped.items():
            record(
                actor=actor,
                action=AuditAction.INTERVIEWS_REVIEWED,
                object_type=Submission._meta.label_lower,
                survey_id=survey_id,
                old={"review_status": {str(pk): old[pk] for pk, _ in group}},
                new={"review_status": status},
                detail={
                    "ids": [pk for pk, _ in group],
                    "waves": sorted({wave for _, wave in group}),
                    "count": len(group),
                    "comment": comment,
                    "question_comments": notes,
                },
            )
        waves = {row.wave_id for row in changed if old[row.pk] != status}
        if waves:
            transaction.on_commit(lambda: _interviews_changed(waves))
    return len(changed)


def _question_comments(comments: Any) -> dict[str, str]:
    if comments is None:
        return {}
    if not isinstance(comments, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in comments.items()
    ):
        raise ValueError("question comments map question names to texts")
    return {name: text.strip() for name, text in comments.items() if text.strip()}


def _interviews_changed(wave_ids: Iterable[int]) -> None:
    from analytics.services import interviews_changed

    interviews_changed(wave_ids=wave_ids)


def delete_interviews(*, submissions: Iterable[Submission] | Iterable[int], actor: Any) -> int:
    """Delete interviews for good (test interviews, say), and recompute their waves.

    After commit the waves are marked dirty: the estimation snapshot and the export cache
    find the deleted rows by their reconciliation and drop them, so the published
    estimates and the microdata stop counting them. Recorded per survey: the ids, instance
    ids and waves, never the answers. An interview another one corrects (``replaces``)
    cannot be deleted (ProtectedError). Returns how many were deleted.
    """
    ids = _pks(submissions)
    with transaction.atomic():
        rows = list(
            Submission.objects.select_for_update(of=("self",))
            .filter(pk__in=ids)
            .values_list("pk", "wave_id", "wave__survey_id", "instance_id")
            .order_by("pk")
        )
        instance_ids = {pk: str(instance) for pk, _, _, instance in rows}
        Submission.objects.filter(pk__in=list(instance_ids)).delete()
        for survey_id, group in _by_survey((pk, w, s) for pk, w, s, _ in rows).items():
            record(
                actor=actor,
                action=AuditAction.INTERVIEWS_DELETED,
                object_type=Submission._meta.label_lower,
                survey_id=survey_id,
                detail={
                    "ids": [pk for pk, _ in group],
                    "instance_ids": [instance_ids[pk] for pk, _ in group],
                    "waves": sorted({wave for _, wave in group}),
                    "count": len(group),
                },
            )
        waves = {wave for _, wave, _, _ in rows}
        if waves:
            transaction.on_commit(lambda: _interviews_changed(waves))
    return len(rows)


# --------------------------------------------------------------------------- surveys


def set_estimate_statuses(*, survey: Survey, statuses: dict[str, list[str]], actor: Any) -> bool:
    """Choose which review statuses feed the survey's estimates, per kind of interview
    (see `Survey.estimate_statuses`); recomputes every wave of the survey when it changes.
    Returns whether it changed."""
    validate_estimate_statuses(statuses)
    with transaction.atomic():
        current = Survey.objects.select_for_update().get(pk=survey.pk)
        old = current.estimate_statuses
        if old == statuses:
            return False
        Survey.objects.filter(pk=survey.pk).update(estimate_statuses=statuses)
        survey.estimate_statuses = statuses
        record(
            actor=actor,
            action=AuditAction.ESTIMATE_STATUSES_CHANGED,
            obj=survey,
            survey_id=survey.pk,
            old=old,
            new=statuses,
        )
        waves = set(Wave.objects.filter(survey=survey).values_list("pk", flat=True))
        if waves:
            transaction.on_commit(lambda: _interviews_changed(waves))
    return True


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
    recompute: bool = True,
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
    - After commit the wave is marked dirty for indicator recomputation (a caller storing a
      batch passes ``recompute=False`` and marks each wave once).
    """
    from analytics.services import mark_wave_dirty

    submission = prepare_interview(
        wave=wave, answers=answers, channel=channel, language=language,
        instance_id=instance_id, form_version=form_version, started_at=started_at,
        ended_at=ended_at, device_id=device_id, user_agent_class=user_agent_class,
        enumerator=enumerator, link=link, design=design,
    )  # fmt: skip
    with translation.override(language):
        existing = Submission.objects.filter(instance_id=submission.instance_id).first()
        if existing is not None:
            return same_or_conflict(existing, wave, submission.answers)
        try:
            with transaction.atomic():
                if link is not None:
                    _claim_link(link, wave, channel)
                submission.save(force_insert=True)
                if link is not None and link.is_single_use:
                    # The day only, and no key to the interview (see InvitationLink).
                    InvitationLink.objects.filter(pk=link.pk).update(used_at=timezone.localdate())
                if recompute:
                    transaction.on_commit(lambda: mark_wave_dirty(wave_id=wave.pk))
        except IntegrityError:
            # The same instance id arrived twice at once: the other request stored it.
            existing = Submission.objects.filter(instance_id=submission.instance_id).first()
            if existing is None:
                raise
            return same_or_conflict(existing, wave, submission.answers)
    return submission


def prepare_interview(
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
    """Every check `submit_interview` makes before it looks the instance id up: the
    interview, valid and ready to insert (not saved), or AnswerErrors / SubmissionRefused.
    A batch of interviews is checked this way one by one and inserted in one statement
    (`surveys.interview_checks.checked_interview` gives the same without the model)."""
    return Submission(
        **checked_interview(
            wave=wave, answers=answers, channel=channel, language=language,
            instance_id=instance_id, form_version=form_version, started_at=started_at,
            ended_at=ended_at, device_id=device_id, user_agent_class=user_agent_class,
            enumerator=enumerator, link=link, design=design,
        )
    )  # fmt: skip


def same_or_conflict(existing: Any, wave: Wave, answers: dict[str, Any]) -> Any:
    """``existing`` (a stored interview, or what a batch knows of one: its ``wave_id`` and
    ``answers``) when a retry brings the same answers; else ``instance_conflict``."""
    if existing.wave_id == wave.pk and existing.answers == answers:
        return existing
    raise SubmissionRefused(
        "instance_conflict",
        gettext("An interview with this identifier was already received with other answers."),
    )


def _claim_link(link: InvitationLink, wave: Wave, channel: str) -> None:
    """Lock the link row and check it still admits this interview."""
    current = InvitationLink.objects.select_for_update().get(pk=link.pk)
    refusal = admission_refusal(link=current, wave=wave, channel=channel)
    if refusal is not None:
        raise refusal
