"""Batch sync of interviews from tablets and ODK Collect: one result per interview.

A batch's assignments, form versions and stored instance ids are read in a few queries,
every interview is checked in memory with the full validation of the web form, and the
ones to store are inserted with their paradata in one statement (on PostgreSQL,
`collect.bulk_insert.insert_linked_rows`), in one transaction; one bad interview never
blocks the others.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from access.permissions import may_assign
from collect.bulk_insert import insert_linked_rows
from collect.models import UNLIMITED, Assignment, Device, TabletInterview
from collect.selectors import form_versions
from surveys.definition import interface_language
from surveys.interview_checks import checked_interview
from surveys.models import Channel, FormVersion, ReviewStatus, Submission
from surveys.services import SubmissionRefused, same_or_conflict, submit_interview
from surveys.validation import AnswerErrors

MAX_PARADATA_BYTES = 64_000
# Paradata the server keeps; anything else the client sends is dropped. Never an IP
# address or a user agent string.
PARADATA_KEYS = {
    "started_at",
    "ended_at",
    "app_version",
    "pages",
    "pauses",
    "changes",
    "language_switches",
    "gps",
}


class SyncStatus:
    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    INVALID = "invalid"
    REFUSED = "refused"


def sync_limit() -> int:
    return int(getattr(settings, "COLLECT_SYNC_MAX_INTERVIEWS", 500))


def _refused(instance_id: Any, code: str, message: str) -> dict[str, Any]:
    return {
        "instance_id": instance_id,
        "status": SyncStatus.REFUSED,
        "code": code,
        "message": message,
    }


def _moment(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return moment


def _paradata_too_big(paradata: dict[str, Any]) -> bool:
    """Whether the paradata, as ASCII JSON with the standard library's separators, is over
    the limit. That text is at most three times orjson's UTF-8 (a separator one character
    more, a character of two to four bytes six or twelve): measured only near the limit."""
    try:
        if 3 * len(orjson.dumps(paradata, default=str)) <= MAX_PARADATA_BYTES:
            return False
    except TypeError:
        pass
    try:
        return len(json.dumps(paradata, default=str)) > MAX_PARADATA_BYTES
    except (TypeError, ValueError):
        return True


class _Languages:
    """The interface language of each item in turn, switched only when it changes (most
    batches are in one language), and the caller's restored at the end."""

    def __init__(self) -> None:
        self.outer: str | None = translation.get_language()
        self.active: str | None = self.outer

    def use(self, language: str | None) -> None:
        if language != self.active:
            if language is None:
                translation.deactivate_all()
            else:
                translation.activate(language)
            self.active = language

    def restore(self) -> None:
        self.use(self.outer)


def _clean_paradata(paradata: dict[str, Any], *, gps_allowed: bool) -> dict[str, Any]:
    kept = {k: v for k, v in paradata.items() if k in PARADATA_KEYS}
    if not gps_allowed:
        kept.pop("gps", None)
    return kept


def sync_interviews(
    *, device: Device, items: list[Any], channel: str = Channel.TABLET
) -> list[dict[str, Any]]:
    """Store a batch of tablet interviews; one result per item, in order.

    The batch's assignments, form versions and already stored instance ids are read in a
    few queries; every item is then checked in memory, with the full validation of
    `surveys.interview_checks.checked_interview` (one bad item never blocks the others), and the
    interviews to store are inserted together at the end, in one transaction: one
    statement for the interviews and their paradata. A correction (``replaces``) is
    stored on its own, through `submit_interview`, as it locks the interview it corrects.
    A resent batch stores nothing twice; an identical batch stored at the same moment by
    another request makes the insert fail on the instance id, and the batch is then redone
    from what is stored. The caller checks the envelope and the size limit.
    """
    enumerator = device.enumerator
    assignment_ids = {i.get("assignment") for i in items if isinstance(i, dict)}
    version_ids = {i.get("form_version") for i in items if isinstance(i, dict)}
    assignments: dict[int, Assignment] = {
        a.pk: a
        for a in Assignment.objects.select_related(
            "wave", "region", "enumerator", "wave__survey__collect_settings"
        )
        .annotate(
            version_sha256=F("form_version__xlsform_sha256"),
            version_created_at=F("form_version__created_at"),
        )
        .filter(
            pk__in=[x for x in assignment_ids if isinstance(x, int) and not isinstance(x, bool)]
        )
    }
    versions = form_versions(
        [x for x in version_ids if isinstance(x, int) and not isinstance(x, bool)],
        known={
            a.form_version_id: (a.form_version_id, a.version_sha256, a.version_created_at)  # type: ignore[attr-defined]
            for a in assignments.values()
        },
    )
    gps = {
        a.wave.survey_id
        for a in assignments.values()
        if getattr(getattr(a.wave.survey, "collect_settings", None), "record_gps", False)
    }
    instances = [_instance(i) for i in items]
    ids = [i for i in instances if i is not None]
    for attempt in (1, 2):
        languages = _Languages()
        try:
            with transaction.atomic():
                batch = _Batch(existing=_stored_interviews(ids))
                try:
                    results = [
                        _sync_one(item, instance, device=device, enumerator=enumerator,
                                  assignments=assignments, versions=versions,
                                  gps_surveys=gps, batch=batch, channel=channel,
                                  languages=languages)
                        for item, instance in zip(items, instances, strict=True)
                    ]  # fmt: skip
                finally:
                    languages.restore()
                batch.insert()
                waves = {
                    assignments[i["assignment"]].wave_id
                    for i, r in zip(items, results, strict=True)
                    if r["status"] == SyncStatus.STORED
                }
                transaction.on_commit(partial(interviews_stored, wave_ids=waves))
            return results
        except IntegrityError:
            # Another request stored some of these instance ids since they were read: the
            # batch is rolled back whole and redone, and finds them stored.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _instance(item: Any) -> uuid.UUID | None:
    if not isinstance(item, dict):
        return None
    try:
        return uuid.UUID(str(item.get("instance_id")))
    except ValueError:
        return None


def interviews_stored(*, wave_ids: set[int]) -> None:
    from analytics.services import mark_wave_dirty

    for wave_id in sorted(wave_ids):
        mark_wave_dirty(wave_id=wave_id)


def _sync_one(
    item: Any,
    instance: uuid.UUID | None,
    *,
    device: Device,
    enumerator: Any,
    assignments: dict[int, Assignment],
    versions: dict[int, FormVersion],
    gps_surveys: set[int],
    batch: _Batch,
    channel: str,
    languages: _Languages,
) -> dict[str, Any]:
    if not isinstance(item, dict):
        languages.restore()
        return _refused(None, "malformed", gettext("This interview could not be read."))
    language = item.get("language")
    languages.use(interface_language(language if isinstance(language, str) else ""))
    if instance is None:
        return _refused(
            item.get("instance_id"),
            "instance_id",
            gettext("The interview identifier is not valid."),
        )
    instance_id = str(instance)
    assignment = assignments.get(item.get("assignment"))  # type: ignore[arg-type]
    imported = assignment is not None and assignment.enumerator_id != enumerator.pk
    if assignment is None or (
        imported and not may_assign(enumerator, assignment.wave, assignment.region)
    ):
        return _refused(
            instance_id,
            "not_your_assignment",
            gettext("This interview's assignment is not one of yours."),
        )
    version = versions.get(item.get("form_version"))  # type: ignore[arg-type]
    if version is None or version.survey_id != assignment.wave.survey_id:
        return _refused(
            instance_id,
            "unknown_form_version",
            gettext("This questionnaire version is not known for this survey."),
        )
    paradata = item.get("paradata")
    started = _moment(paradata.get("started_at")) if isinstance(paradata, dict) else None
    ended = _moment(paradata.get("ended_at")) if isinstance(paradata, dict) else None
    if started is None or ended is None:
        return _refused(
            instance_id,
            "paradata",
            gettext("The interview's start and end times are missing or not readable."),
        )
    assert isinstance(paradata, dict)
    if _paradata_too_big(paradata):
        return _refused(instance_id, "paradata", gettext("The interview's paradata is too large."))
    paradata = _clean_paradata(paradata, gps_allowed=assignment.wave.survey_id in gps_surveys)
    try:
        return _store(
            instance=instance,
            item=item,
            device=device,
            # A supervisor importing an enumerator's exported interviews stores
            # them as that enumerator's, from the supervisor's device.
            enumerator=assignment.enumerator if imported else enumerator,
            assignment=assignment,
            version=version,
            started=started,
            ended=ended,
            paradata=paradata,
            batch=batch,
            channel=channel,
        )
    except AnswerErrors as exc:
        return {"instance_id": instance_id, "status": SyncStatus.INVALID, "errors": exc.errors}
    except SubmissionRefused as exc:
        if exc.code == "instance_conflict":
            return {
                "instance_id": instance_id,
                "status": SyncStatus.CONFLICT,
                "message": exc.message,
            }
        return _refused(instance_id, exc.code, exc.message)


@dataclass
class _Known:
    """An interview already received (stored before, or earlier in this batch)."""

    enumerator_id: int | None
    wave_id: int
    answers: Any
    over_quota: bool | None


def _stored_interviews(ids: list[uuid.UUID]) -> dict[uuid.UUID, _Known]:
    if not ids:
        return {}
    if connection.vendor != "postgresql":
        rows = Submission.objects.filter(instance_id__in=ids).values_list(
            "instance_id", "enumerator_id", "wave_id", "answers", "tablet__over_quota"
        )
        return {row[0]: _Known(*row[1:]) for row in rows}
    # The ids as one binary array (a list of 500 parameters costs more to write and to
    # plan than the lookup itself).
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_STORED_QUERY, [ids])
        found = cursor.fetchall()
    # The answers come as JSON text, as Django reads a JSON field on PostgreSQL.
    return {
        instance: _Known(enumerator_id, wave_id, json.loads(text), over)
        for instance, enumerator_id, wave_id, text, over in found
    }


_STORED_QUERY = (
    f"SELECT s.instance_id, s.enumerator_id, s.wave_id, s.answers, t.over_quota "
    f"FROM {Submission._meta.db_table} s LEFT JOIN {TabletInterview._meta.db_table} t "
    f"ON t.submission_id = s.id WHERE s.instance_id = ANY(%b::uuid[])"
)


@dataclass
class _Batch:
    """What a batch learns as it goes: the instance ids already received (and whose), the
    interviews to insert at the end, and each limited assignment's count of interviews,
    read once under the assignment's row lock."""

    existing: dict[uuid.UUID, _Known]
    # New interviews: the submission's fields and the tablet's (``submission`` left out).
    pending: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    # Corrections, stored already (`_store_correction`): their tablet rows.
    corrections: list[TabletInterview] = field(default_factory=list)
    counted: dict[int, int] = field(default_factory=dict)

    def done(self, assignment: Assignment) -> int:
        """Interviews of the assignment not rejected, this batch's included. The assignment
        row is locked, so two devices syncing at once count its quota one after the other."""
        if assignment.pk not in self.counted:
            Assignment.objects.select_for_update().filter(pk=assignment.pk).first()
            self.counted[assignment.pk] = (
                TabletInterview.objects.filter(assignment=assignment)
                .exclude(submission__review_status=ReviewStatus.REJECTED)
                .count()
            )
        return self.counted[assignment.pk]

    def add(self, assignment: Assignment, known: _Known, instance: uuid.UUID) -> None:
        self.existing[instance] = known
        if assignment.pk in self.counted:
            self.counted[assignment.pk] += 1

    def insert(self) -> None:
        """The new interviews and their paradata in one statement (in instance id order,
        so that concurrent batches wait on each other instead of deadlocking)."""
        fresh = sorted(self.pending, key=_instance_order)
        insert_linked_rows(
            Submission,
            [submission for submission, _ in fresh],
            linked=TabletInterview,
            linked_rows=[tablet for _, tablet in fresh],
            link="submission",
            key="instance_id",
        )
        TabletInterview.objects.bulk_create(self.corrections, ignore_conflicts=True)


def _instance_order(pending: tuple[dict[str, Any], dict[str, Any]]) -> uuid.UUID:
    return pending[0]["instance_id"]


def _store(
    *,
    instance: uuid.UUID,
    item: dict[str, Any],
    device: Device,
    enumerator: Any,
    assignment: Assignment,
    version: FormVersion,
    started: dt.datetime,
    ended: dt.datetime,
    paradata: dict[str, Any],
    batch: _Batch,
    channel: str,
) -> dict[str, Any]:
    instance_id = str(instance)
    language = item.get("language")
    if not isinstance(language, str):
        raise SubmissionRefused("language", "the interview language is missing")
    design: dict[str, Any] = {"region": assignment.region}
    if assignment.stratum:
        design["stratum"] = assignment.stratum
    design["psu"] = assignment.psu or assignment.settlement or f"TAB-{assignment.pk}"
    if assignment.prefilled.get("URBAN") in (1, 2):
        design["urban_rural"] = assignment.prefilled["URBAN"]
    known = batch.existing.get(instance)
    if known is not None and known.enumerator_id != enumerator.pk:
        raise SubmissionRefused(
            "instance_conflict",
            gettext("An interview with this identifier was already received with other answers."),
        )
    interview: dict[str, Any] = {
        "wave": assignment.wave,
        "form_version": version,
        "answers": item.get("answers"),
        "channel": channel,
        "language": language,
        "instance_id": instance,
        "started_at": started,
        "ended_at": ended,
        "device_id": str(device.pk),
        "enumerator": enumerator,
        "design": design,
    }
    limited = assignment.quota != UNLIMITED
    if known is None and item.get("replaces") not in (None, ""):
        over = _store_correction(
            item=item, interview=interview, device=device, assignment=assignment,
            paradata=paradata, batch=batch,
        )  # fmt: skip
    else:
        done = batch.done(assignment) if limited and known is None else 0
        submission = checked_interview(**interview)
        if known is not None:
            same_or_conflict(known, assignment.wave, submission["answers"])
            result: dict[str, Any] = {"instance_id": instance_id, "status": SyncStatus.DUPLICATE}
            if known.over_quota:
                result["over_quota"] = True
            return result
        over = limited and done >= assignment.quota
        tablet = {
            "device": device,
            "assignment": assignment,
            "paradata": paradata,
            "over_quota": over,
        }
        batch.pending.append((submission, tablet))
        batch.add(
            assignment,
            _Known(enumerator.pk, assignment.wave_id, submission["answers"], over),
            instance,
        )
    stored: dict[str, Any] = {"instance_id": instance_id, "status": SyncStatus.STORED}
    if over:
        stored["over_quota"] = True
    return stored


def _store_correction(
    *,
    item: dict[str, Any],
    interview: dict[str, Any],
    device: Device,
    assignment: Assignment,
    paradata: dict[str, Any],
    batch: _Batch,
) -> bool:
    """A corrected interview, stored now in a savepoint of its own: the interview it
    corrects is locked and linked. Returns whether it is over its assignment's quota."""
    enumerator = interview["enumerator"]
    limited = assignment.quota != UNLIMITED
    with transaction.atomic():
        replaces = _returned_interview(item["replaces"], enumerator)
        done = batch.done(assignment) if limited else 0
        submission = submit_interview(**interview, recompute=False)
        try:
            with transaction.atomic():
                Submission.objects.filter(pk=submission.pk).update(replaces=replaces)
        except IntegrityError:
            raise SubmissionRefused(
                "replaces_not_returned",
                gettext("The interview this one corrects was already corrected."),
            ) from None
        over = limited and done >= assignment.quota
        batch.corrections.append(
            TabletInterview(
                submission=submission,
                device=device,
                assignment=assignment,
                paradata=paradata,
                over_quota=over,
            )
        )
        batch.add(
            assignment,
            _Known(enumerator.pk, assignment.wave_id, submission.answers, over),
            interview["instance_id"],
        )
    return over


def _returned_interview(raw: Any, enumerator: Any) -> Submission:
    """The rejected interview of this enumerator that ``raw`` names, locked, not yet replaced."""
    try:
        old_id = uuid.UUID(str(raw))
    except ValueError:
        old_id = None
    old = (
        Submission.objects.select_for_update()
        .filter(instance_id=old_id, enumerator=enumerator, review_status=ReviewStatus.REJECTED)
        .first()
        if old_id is not None
        else None
    )
    if old is None or Submission.objects.filter(replaces=old).exists():
        raise SubmissionRefused(
            "replaces_not_returned",
            gettext("The interview this one corrects was not sent back to you."),
        )
    return old
