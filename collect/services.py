"""Writes for the enumerators' channel: enrolment, devices, assignments, send-back.

Every function is keyword-only, runs in one transaction and records its audit event in
it. Batch sync of interviews is `collect.sync`: stored interviews are their own record
(the submission, its device and paradata), so it writes no audit event per interview.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from access.permissions import Capability, may, may_assign
from audit.models import AuditAction
from audit.services import record
from collect.models import UNLIMITED, Assignment, Device, EnrolmentCode
from collect.tokens import digest, new_device_token, new_enrolment_code, normalise_code
from surveys.models import FormVersion, Region, ReviewStatus, Submission, Wave
from surveys.services import review_interviews

ENROLMENT_CODE_LIFETIME = dt.timedelta(hours=24)
LAST_SEEN_EVERY = dt.timedelta(minutes=1)


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
