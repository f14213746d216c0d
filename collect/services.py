"""Writes for the enumerators' channel: enrolment, devices, assignments, sync, send-back.

Every function is keyword-only and runs in one transaction (sync: one per batch, whose
interviews are each checked in memory, so one bad interview never blocks the others, and
inserted together), and records its audit event in it. Stored interviews are their own
record (the submission, its device and paradata), so sync writes no audit event per
interview.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from access.permissions import Capability, may, may_assign
from audit.models import AuditAction
from audit.services import record
from collect.bulk_insert import insert_new
from collect.models import (
    UNLIMITED,
    Assignment,
    Device,
    EnrolmentCode,
    TabletInterview,
)
from collect.selectors import form_versions
from collect.tokens import digest, new_device_token, new_enrolment_code, normalise_code
from surveys.definition import interface_language
from surveys.models import Channel, FormVersion, Region, ReviewStatus, Submission, Wave
from surveys.services import (
    SubmissionRefused,
    prepare_interview,
    review_interviews,
    same_or_conflict,
    submit_interview,
)
from surveys.validation import AnswerErrors

ENROLMENT_CODE_LIFETIME = dt.timedelta(hours=24)
LAST_SEEN_EVERY = dt.timedelta(minutes=1)
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


class EnrolmentRefused(Exception):
    """``code``: ``credentials``, ``not_enumerator``, ``code_invalid``, ``code_used``,
    ``code_expired``; ``message`` for people, in the active language."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def is_enumerator(user: Any) -> bool:
    """Collects interviews: the permission and an enumerator's or supervisor's grant in a
    survey (an administrator's grant is not one)."""
    return bool(user is not None and may(user, Capability.COLLECT_INTERVIEWS))


# --------------------------------------------------------------------------- devices


def enrol_device(
    *, enumerator: Any, label: str = "", app_version: str = "", actor: Any = None, via: str
) -> tuple[Device, str]:
    """Register a tablet for an enumerator. Returns the device and its token (shown once)."""
    if not is_enumerator(enumerator):
        raise EnrolmentRefused("not_enumerator", gettext("This account cannot collect interviews."))
    token, prefix, token_hash = new_device_token()
    with transaction.atomic():
        device = Device.objects.create(
            enumerator=enumerator,
            label=label[:100],
            app_version=app_version[:32],
            token_prefix=prefix,
            token_hash=token_hash,
        )
        record(
            actor=actor if actor is not None else enumerator,
            action=AuditAction.DEVICE_ENROLLED,
            obj=device,
            detail={"enumerator": enumerator.get_username(), "via": via},
        )
    return device, token


def enrol_with_code(*, code: str, label: str = "", app_version: str = "") -> tuple[Device, str]:
    """Enrol with a supervisor's single-use code; the code is used up in the same transaction."""
    code_hash = digest(normalise_code(code))
    with transaction.atomic():
        entry = (
            EnrolmentCode.objects.select_for_update()
            .select_related("enumerator")
            .filter(code_hash=code_hash)
            .first()
        )
        if entry is None:
            raise EnrolmentRefused("code_invalid", gettext("This enrolment code is not valid."))
        if entry.used_at is not None:
            raise EnrolmentRefused("code_used", gettext("This enrolment code was already used."))
        if entry.expires_at <= timezone.now():
            raise EnrolmentRefused(
                "code_expired",
                gettext("This enrolment code has expired; ask your supervisor for a new one."),
            )
        device, token = enrol_device(
            enumerator=entry.enumerator,
            label=label,
            app_version=app_version,
            actor=entry.created_by,
            via="code",
        )
        entry.used_at = timezone.now()
        entry.device = device
        entry.save(update_fields=["used_at", "device"])
    return device, token


def make_enrolment_code(
    *, enumerator: Any, created_by: Any, lifetime: dt.timedelta = ENROLMENT_CODE_LIFETIME
) -> tuple[EnrolmentCode, str]:
    """A single-use code for one of ``enumerator``'s tablets. Returns the row and the code."""
    if not is_enumerator(enumerator):
        raise EnrolmentRefused("not_enumerator", gettext("This account cannot collect interviews."))
    code = new_enrolment_code()
    with transaction.atomic():
        entry = EnrolmentCode.objects.create(
            enumerator=enumerator,
            created_by=created_by,
            code_hash=digest(code),
            expires_at=timezone.now() + lifetime,
        )
        record(
            actor=created_by,
            action=AuditAction.DEVICE_ENROLLED,
            obj=entry,
            detail={"enumerator": enumerator.get_username(), "step": "code_created"},
        )
    return entry, code


def revoke_device(*, device: Device, actor: Any) -> bool:
    """Revoke a device's token. Its interviews stay; the tablet keeps its local data."""
    with transaction.atomic():
        changed = Device.objects.filter(pk=device.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if changed:
            device.refresh_from_db(fields=["revoked_at"])
            record(
                actor=actor,
                action=AuditAction.DEVICE_REVOKED,
                obj=device,
                detail={"enumerator": device.enumerator.get_username()},
            )
    return bool(changed)


def touch_device(*, device: Device, app_version: str = "") -> None:
    """Note that the device was seen (at most one write a minute)."""
    now = timezone.now()
    changes: dict[str, Any] = {}
    if device.last_seen_at is None or now - device.last_seen_at > LAST_SEEN_EVERY:
        changes["last_seen_at"] = now
    if app_version and app_version[:32] != device.app_version:
        changes["app_version"] = app_version[:32]
    if changes:
        Device.objects.filter(pk=device.pk).update(**changes)
        for key, value in changes.items():
            setattr(device, key, value)


# --------------------------------------------------------------------------- assignments


class AssignmentErrors(ValueError):
    """Assignments that cannot be created; ``errors`` are messages for people."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


def _check_assignment(
    *,
    enumerator: Any,
    wave: Wave,
    region: Region | None,
    form_version: FormVersion | None,
    quota: int,
    prefilled: Any,
    latitude: float | None = None,
    longitude: float | None = None,
) -> list[str]:
    problems = []
    if not is_enumerator(enumerator):
        problems.append(gettext("This account cannot collect interviews."))
    if region is None or region.geography != wave.geography:
        problems.append(gettext("The region is not one of this wave's regions."))
    version = form_version or wave.form_version
    if version is None or version.survey_id != wave.survey_id:
        problems.append(gettext("This survey wave has no questionnaire to answer."))
    if quota < UNLIMITED:
        problems.append(gettext("The quota must be a whole number, -1 for no limit."))
    if not isinstance(prefilled, dict):
        problems.append(gettext("The prefilled answers must be question names and values."))
    problems.extend(_coordinate_problems(latitude, longitude))
    return problems


def _coordinate_problems(latitude: Any, longitude: Any) -> list[str]:
    if latitude is None and longitude is None:
        return []
    if latitude is None or longitude is None:
        return [gettext("Give both the latitude and the longitude of the settlement, or neither.")]
    if not (isinstance(latitude, int | float) and -90 <= latitude <= 90):
        return [gettext("The latitude must be a number from -90 to 90 (decimal degrees).")]
    if not (isinstance(longitude, int | float) and -180 <= longitude <= 180):
        return [gettext("The longitude must be a number from -180 to 180 (decimal degrees).")]
    return []


def create_assignment(
    *,
    enumerator: Any,
    wave: Wave,
    region: Region,
    created_by: Any,
    form_version: FormVersion | None = None,
    settlement: str = "",
    psu: str = "",
    stratum: str = "",
    quota: int = UNLIMITED,
    prefilled: dict[str, Any] | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
) -> Assignment:
    """One assignment; refused whole (AssignmentErrors) when any field is wrong."""
    prefilled = {} if prefilled is None else prefilled
    problems = _check_assignment(
        enumerator=enumerator,
        wave=wave,
        region=region,
        form_version=form_version,
        quota=quota,
        prefilled=prefilled,
        latitude=latitude,
        longitude=longitude,
    )
    version = form_version or wave.form_version
    if problems or version is None:
        raise AssignmentErrors(problems)
    with transaction.atomic():
        assignment = Assignment.objects.create(
            enumerator=enumerator,
            wave=wave,
            form_version=version,
            region=region,
            settlement=settlement,
            psu=psu,
            stratum=stratum,
            latitude=latitude,
            longitude=longitude,
            quota=quota,
            prefilled=prefilled,
            created_by=created_by,
        )
        record(
            actor=created_by,
            action=AuditAction.ASSIGNMENTS_CHANGED,
            obj=assignment,
            survey_id=wave.survey_id,
            new=_assignment_summary(assignment),
        )
    return assignment


def save_assignment(*, assignment: Assignment, actor: Any) -> Assignment:
    """Store an edited assignment (its quota, place or prefilled answers)."""
    problems = _check_assignment(
        enumerator=assignment.enumerator,
        wave=assignment.wave,
        region=assignment.region,
        form_version=assignment.form_version,
        quota=assignment.quota,
        prefilled=assignment.prefilled,
        latitude=assignment.latitude,
        longitude=assignment.longitude,
    )
    if problems:
        raise AssignmentErrors(problems)
    with transaction.atomic():
        old = _assignment_summary(Assignment.objects.get(pk=assignment.pk))
        assignment.save()
        record(
            actor=actor,
            action=AuditAction.ASSIGNMENTS_CHANGED,
            obj=assignment,
            survey_id=assignment.wave.survey_id,
            old=old,
            new=_assignment_summary(assignment),
        )
    return assignment


def _assignment_summary(a: Assignment) -> dict[str, Any]:
    return {
        "enumerator": a.enumerator.get_username(),
        "wave": a.wave.code,
        "region": a.region.code,
        "settlement": a.settlement,
        "psu": a.psu,
        "quota": a.quota,
        **({"latitude": a.latitude, "longitude": a.longitude} if a.coordinates else {}),
    }


ASSIGNMENT_COLUMNS = ("enumerator", "survey", "wave", "region")
OPTIONAL_COLUMNS = (
    "form_version", "settlement", "psu", "stratum", "quota", "latitude", "longitude",
)  # fmt: skip
PREFILL_PREFIX = "prefill."
_INTEGER = re.compile(r"-?[0-9]+")


def import_assignments_csv(*, content: bytes, created_by: Any) -> list[Assignment]:
    """Assignments from a CSV (UTF-8, with or without BOM; comma or semicolon).

    Columns: enumerator (username), survey (code), wave (code), region (code), and
    optionally form_version (version), settlement, psu, stratum, quota (-1 unlimited),
    latitude and longitude of the settlement (decimal degrees, a point or a comma) and
    ``prefill.<QUESTION>`` columns for prefilled design answers. Every row is checked
    first; one bad row refuses the file whole, with every problem named by row number.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AssignmentErrors([gettext("The file is not UTF-8 text.")]) from None
    try:
        dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else "", delimiters=",;")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ASSIGNMENT_COLUMNS if c not in header]
    if missing:
        raise AssignmentErrors(
            [
                gettext("Columns missing from the file: %(columns)s.")
                % {"columns": ", ".join(missing)}
            ]
        )
    User = get_user_model()
    users: dict[str, Any] = {}
    waves: dict[tuple[str, str], Wave | None] = {}
    errors: list[str] = []
    rows: list[dict[str, Any]] = []
    for number, raw in enumerate(reader, start=2):  # row 1 is the header
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue
        problems: list[str] = []
        username = row["enumerator"]
        if username not in users:
            users[username] = User.objects.filter(username=username).first()
        enumerator = users[username]
        key = (row["survey"], row["wave"])
        if key not in waves:
            waves[key] = (
                Wave.objects.select_related("form_version", "survey")
                .filter(survey__code=key[0], code=key[1])
                .first()
            )
        wave = waves[key]
        if enumerator is None:
            problems.append(gettext("There is no user %(name)s.") % {"name": username})
        if wave is None:
            problems.append(
                gettext("There is no wave %(wave)s of survey %(survey)s.")
                % {"wave": key[1], "survey": key[0]}
            )
        quota_text = row.get("quota", "") or str(UNLIMITED)
        quota = int(quota_text) if _INTEGER.fullmatch(quota_text) else None
        if quota is None:
            problems.append(gettext("The quota must be a whole number, -1 for no limit."))
        latitude, longitude = (_degrees(row.get(c, "")) for c in ("latitude", "longitude"))
        if latitude is False or longitude is False:
            problems.append(gettext("The latitude and longitude must be decimal degrees."))
            latitude = longitude = None
        prefilled = {
            k[len(PREFILL_PREFIX) :]: (int(v) if _INTEGER.fullmatch(v) else v)
            for k, v in row.items()
            if k.startswith(PREFILL_PREFIX) and v != ""
        }
        if wave is not None:
            region = Region.objects.filter(geography=wave.geography, code=row["region"]).first()
            if region is not None and not may_assign(created_by, wave, region):
                problems.append(
                    gettext(
                        "You may not assign interviews in region %(region)s of survey %(survey)s."
                    )
                    % {"region": region.code, "survey": wave.survey.code}
                )
            version = None
            if row.get("form_version"):
                version = FormVersion.objects.filter(
                    survey=wave.survey, version=row["form_version"]
                ).first()
                if version is None:
                    problems.append(
                        gettext("There is no questionnaire version %(version)s.")
                        % {"version": row["form_version"]}
                    )
            if enumerator is not None:
                problems.extend(
                    p
                    for p in _check_assignment(
                        enumerator=enumerator,
                        wave=wave,
                        region=region,
                        form_version=version,
                        quota=UNLIMITED if quota is None else quota,
                        prefilled=prefilled,
                        latitude=latitude,
                        longitude=longitude,
                    )
                    if p not in problems
                )
            if not problems:
                rows.append(
                    {
                        "enumerator": enumerator,
                        "wave": wave,
                        "region": region,
                        "form_version": version or wave.form_version,
                        "settlement": row.get("settlement", ""),
                        "psu": row.get("psu", ""),
                        "stratum": row.get("stratum", ""),
                        "quota": quota,
                        "prefilled": prefilled,
                        "latitude": latitude,
                        "longitude": longitude,
                        "created_by": created_by,
                    }
                )
        errors.extend(
            gettext("Row %(row)d: %(problem)s") % {"row": number, "problem": p} for p in problems
        )
    if errors:
        raise AssignmentErrors(errors)
    if not rows:
        raise AssignmentErrors([gettext("The file has no assignments.")])
    with transaction.atomic():
        created = [Assignment.objects.create(**fields) for fields in rows]
        for survey_id in {a.wave.survey_id for a in created}:
            mine = [a for a in created if a.wave.survey_id == survey_id]
            record(
                actor=created_by,
                action=AuditAction.ASSIGNMENTS_CHANGED,
                object_type="collect.assignment",
                object_id=",".join(str(a.pk) for a in mine)[:64],
                survey_id=survey_id,
                new=[_assignment_summary(a) for a in mine],
                detail={"source": "csv", "count": len(mine)},
            )
    return created


_DEGREES = re.compile(r"[+-]?[0-9]{1,3}(?:[.,][0-9]+)?")


def _degrees(text: str) -> float | None | bool:
    """A CSV cell of decimal degrees: the number, None when empty, False when unreadable."""
    if not text:
        return None
    if not _DEGREES.fullmatch(text):
        return False
    return float(text.replace(",", "."))


# --------------------------------------------------------------------------- sync


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
    `surveys.services.prepare_interview` (one bad item never blocks the others), and the
    interviews to store are inserted together at the end, in one transaction: one
    statement for the interviews, one for their paradata. A correction (``replaces``) is
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
    ids = []
    for i in items:
        with contextlib.suppress(ValueError, AttributeError):
            ids.append(uuid.UUID(str(i.get("instance_id"))))
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                batch = _Batch(existing=_stored_interviews(ids))
                results = [
                    _sync_one(item, device=device, enumerator=enumerator,
                              assignments=assignments, versions=versions, gps_surveys=gps,
                              batch=batch, channel=channel)
                    for item in items
                ]  # fmt: skip
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


def interviews_stored(*, wave_ids: set[int]) -> None:
    from analytics.services import mark_wave_dirty

    for wave_id in sorted(wave_ids):
        mark_wave_dirty(wave_id=wave_id)


def _sync_one(
    item: Any,
    *,
    device: Device,
    enumerator: Any,
    assignments: dict[int, Assignment],
    versions: dict[int, FormVersion],
    gps_surveys: set[int],
    batch: _Batch,
    channel: str,
) -> dict[str, Any]:
    if not isinstance(item, dict):
        return _refused(None, "malformed", gettext("This interview could not be read."))
    raw_id = item.get("instance_id")
    language = item.get("language")
    with translation.override(interface_language(language if isinstance(language, str) else "")):
        try:
            instance = uuid.UUID(str(raw_id))
        except ValueError:
            return _refused(
                raw_id, "instance_id", gettext("The interview identifier is not valid.")
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
        try:
            too_big = len(json.dumps(paradata, default=str)) > MAX_PARADATA_BYTES
        except (TypeError, ValueError):
            too_big = True
        if too_big:
            return _refused(
                instance_id, "paradata", gettext("The interview's paradata is too large.")
            )
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
    rows = Submission.objects.filter(instance_id__in=ids).values_list(
        "instance_id", "enumerator_id", "wave_id", "answers", "tablet__over_quota"
    )
    return {row[0]: _Known(*row[1:]) for row in rows}


@dataclass
class _Batch:
    """What a batch learns as it goes: the instance ids already received (and whose), the
    interviews to insert at the end, and each limited assignment's count of interviews,
    read once under the assignment's row lock."""

    existing: dict[uuid.UUID, _Known]
    pending: list[TabletInterview] = field(default_factory=list)
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

    def add(self, tablet: TabletInterview, known: _Known, instance: uuid.UUID) -> None:
        self.pending.append(tablet)
        self.existing[instance] = known
        if tablet.assignment_id in self.counted:
            self.counted[tablet.assignment_id] += 1

    def insert(self) -> None:
        """The new interviews in one statement (in instance id order, so that concurrent
        batches wait on each other instead of deadlocking), then their paradata."""
        fresh = [p for p in self.pending if p.submission.pk is None]
        corrections = [p for p in self.pending if p.submission.pk is not None]
        insert_new(Submission, sorted((p.submission for p in fresh), key=_instance_order))
        insert_new(TabletInterview, fresh)
        TabletInterview.objects.bulk_create(corrections, ignore_conflicts=True)


def _instance_order(submission: Any) -> uuid.UUID:
    return submission.instance_id


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
        submission = prepare_interview(**interview)
        if known is not None:
            same_or_conflict(known, assignment.wave, submission.answers)
            result: dict[str, Any] = {"instance_id": instance_id, "status": SyncStatus.DUPLICATE}
            if known.over_quota:
                result["over_quota"] = True
            return result
        over = limited and done >= assignment.quota
        batch.add(
            TabletInterview(
                submission=submission,
                device=device,
                assignment=assignment,
                paradata=paradata,
                over_quota=over,
            ),
            _Known(enumerator.pk, assignment.wave_id, submission.answers, over),
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
        batch.add(
            TabletInterview(
                submission=submission,
                device=device,
                assignment=assignment,
                paradata=paradata,
                over_quota=over,
            ),
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


# --------------------------------------------------------------------------- review


def send_back(
    *,
    submission: Submission,
    reviewer: Any,
    comment: str = "",
    question_comments: dict[str, str] | None = None,
) -> Submission:
    """Reject an interview with comments: it goes back to its enumerator's tablet (the one
    review service records the decision, its comments and who made it)."""
    review_interviews(
        submissions=[submission],
        status=ReviewStatus.REJECTED,
        actor=reviewer,
        comment=comment,
        question_comments=question_comments,
    )
    return Submission.objects.get(pk=submission.pk)
