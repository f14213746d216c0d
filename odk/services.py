"""ODK Collect as a third channel into the one submission service.

An OpenRosa submission is read (`odk.instances`); its form version, the enumerator's work
in its survey and any interview stored under its instance id are found in one query
(`collect.sync_one.find_for_form`), and the interview goes through the per-interview path
of a tablet (`collect.sync_one.store`, with channel ``odk``), which checks it as a batch
does (`collect.sync`): the same validation, idempotency on the instance id, quota flags,
and ``replaces`` (here ``meta/deprecatedID``) allowed only for an interview the supervisor
sent back. Attachments are kept privately under ``MEDIA_ROOT/odk-attachments/`` and added
across split uploads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils.translation import gettext

from collect.models import Assignment, Device
from collect.selectors import form_versions
from collect.services import enrol_device
from collect.sync import SyncStatus
from collect.sync_one import Found, VersionKey, Work, find_for_form, find_for_submission, store
from odk.instances import (
    Element,
    InstanceError,
    instance_id_of,
    parse,
    parse_instance,
    read_header,
)
from odk.models import Attachment
from odk.xforms import meta_names_for
from surveys.definition import INTERFACE_LANGUAGES
from surveys.models import Channel, FormVersion, Submission

# What `collect.sync_one.find_for_form` finds for an instance: its version's key, the
# enumerator's work in its survey and what is stored under its instance id.
FormFound = tuple[VersionKey | None, Work, Any]


@dataclass(frozen=True)
class Receipt:
    """What Collect is answered: an HTTP status and a message it shows the enumerator."""

    status: int
    message: str
    instance_id: str = ""


def max_submission_bytes() -> int:
    return int(settings.ODK_MAX_SUBMISSION_BYTES)


# --------------------------------------------------------------------------- devices


ODK_DEVICE = "odk-collect"
ACCOUNT_DEVICE = "odk-account"  # requests signed with a user name and password


def create_odk_device(
    *, enumerator: Any, actor: Any, label: str = "", app_version: str = ODK_DEVICE
) -> tuple[Device, str]:
    """A device for ODK Collect, enrolled as any tablet is (`collect.services.enrol_device`):
    its token goes in the server URL Collect is given."""
    return enrol_device(
        enumerator=enumerator,
        label=label or gettext("ODK Collect"),
        app_version=app_version,
        actor=actor,
        via="odk",
    )


def collect_settings(*, server_url: str, project_name: str) -> dict[str, Any]:
    """ODK Collect's project settings for this server (what its settings QR code holds)."""
    return {
        "general": {
            "server_url": server_url,
            "form_update_mode": "match_exactly",
            "autosend": "wifi_and_cellular",
        },
        "admin": {},
        "project": {"name": project_name},
    }


def settings_qr_payload(collect_project: dict[str, Any]) -> str:
    """The settings as Collect reads them from a QR code: JSON, zlib-compressed, base64."""
    raw = json.dumps(collect_project, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(raw)).decode()


# --------------------------------------------------------------------------- forms


def device_form_versions(device: Device) -> list[FormVersion]:
    """The questionnaire versions of the device's enumerator's assignments, newest of each form."""
    versions = FormVersion.objects.filter(
        assignments__enumerator=device.enumerator, assignments__wave__is_open=True
    ).distinct()
    newest: dict[str, FormVersion] = {}
    for version in versions.order_by("created_at", "pk"):
        newest[version.form_id] = version
    return sorted(newest.values(), key=lambda v: (v.title, v.pk))


def may_download(device: Device, version: FormVersion) -> bool:
    return Assignment.objects.filter(
        enumerator=device.enumerator, wave__survey_id=version.survey_id
    ).exists()


# --------------------------------------------------------------------------- submissions


def receive_submission(
    *,
    device: Device,
    xml: bytes,
    files: Iterable[UploadedFile],
    language: str,
) -> Receipt:
    """Store one OpenRosa POST: the interview (once), then any attachments it carries."""
    try:
        root = parse(xml)
        form_id, version_text = read_header(root)
    except InstanceError as exc:
        return Receipt(400, _instance_message(exc))
    found = find_for_form(
        enumerator=device.enumerator, form_id=form_id, version=version_text,
        instance=instance_id_of(root),
    )  # fmt: skip
    return receive_found(device=device, root=root, found=found, files=files, language=language)


def find_submission_device(*, token_prefix: str, root: Element) -> tuple[Device | None, FormFound]:
    """The device of a token prefix and what `receive_found` needs for the instance
    ``root`` (its header readable), in one query (`collect.sync_one.find_for_submission`).
    The caller checks the token and the device before storing anything."""
    form_id, version_text = read_header(root)
    return find_for_submission(
        token_prefix=token_prefix, form_id=form_id, version=version_text,
        instance=instance_id_of(root),
    )  # fmt: skip


def receive_found(
    *,
    device: Device,
    root: Element,
    found: FormFound,
    files: Iterable[UploadedFile],
    language: str,
) -> Receipt:
    """`receive_submission` once the instance is parsed and its form version, the
    enumerator's work and the stored instance are found."""
    form_id, version_text = read_header(root)
    version_key, work, known = found
    version = (
        form_versions([version_key[0]], known={version_key[0]: version_key}).get(version_key[0])
        if version_key
        else None
    )
    if version is None:
        return Receipt(
            404,
            gettext("This form (%(form)s, version %(version)s) is not assigned to you.")
            % {"form": form_id, "version": version_text or "-"},
        )
    try:
        instance = parse_instance(root, version.definition, meta_names_for(version))
    except InstanceError as exc:
        return Receipt(400, _instance_message(exc))
    files = list(files)
    too_large = _too_large(files)
    if too_large:  # refused before anything is stored: Collect keeps the whole submission
        return Receipt(413, too_large, str(instance.instance_id))
    if language not in version.languages:
        language = version.default_language
    assignment, record_gps = _assignment_for(work, instance.answers)
    if assignment is None:
        return Receipt(403, gettext("You have no assignment in this survey."))
    paradata: dict[str, Any] = {
        "started_at": (instance.started_at or instance.ended_at or _now()).isoformat(),
        "ended_at": (instance.ended_at or instance.started_at or _now()).isoformat(),
        "app_version": device.app_version or ODK_DEVICE,
    }
    item = {
        "instance_id": str(instance.instance_id),
        "form_version": version.pk,
        "assignment": assignment.pk,
        "answers": instance.answers,
        "language": language,
        "paradata": paradata,
        "replaces": str(instance.deprecated_id) if instance.deprecated_id else None,
    }
    result = store(
        device=device,
        item=item,
        found=Found(assignment, version_key, record_gps, known),
        channel=Channel.ODK,
    )
    status = result["status"]
    if status in (SyncStatus.STORED, SyncStatus.DUPLICATE):
        if files:
            _keep_attachments(instance.instance_id, files)
        message = (
            gettext("Interview received.")
            if status == SyncStatus.STORED
            else gettext("This interview had already been received.")
        )
        if result.get("over_quota"):
            message += " " + gettext("The assignment's quota was already reached.")
        return Receipt(201, message, str(instance.instance_id))
    if status == SyncStatus.CONFLICT:
        return Receipt(409, result["message"], str(instance.instance_id))
    if status == SyncStatus.INVALID:
        lines = [f"{name}: {' '.join(messages)}" for name, messages in result["errors"].items()]
        return Receipt(
            400,
            gettext("The interview was not accepted:") + "\n" + "\n".join(lines),
            str(instance.instance_id),
        )
    code = result.get("code", "")
    return Receipt(403 if code == "not_your_assignment" else 400, result["message"])


def _now():
    from django.utils import timezone

    return timezone.now()


def _instance_message(exc: InstanceError) -> str:
    if exc.code == "no_instance_id":
        return gettext("The interview has no instance ID (meta/instanceID).")
    return gettext("The interview could not be read: %(reason)s") % {"reason": exc.message}


def _assignment_for(
    work: list[tuple[Assignment, bool]], answers: dict[str, Any]
) -> tuple[Assignment | None, bool]:
    """The enumerator's assignment this interview belongs to (with its survey's GPS
    setting): in the version's survey, the one of the answered region when there are
    several (ODK Collect cannot say which)."""
    region = answers.get("REGION")
    for assignment, record_gps in work:
        if region and assignment.region.code == region:
            return assignment, record_gps
    return work[0] if work else (None, False)


def _too_large(files: list[UploadedFile]) -> str:
    """A message naming the first attachment over the size limit, or ''."""
    limit = int(settings.ODK_MAX_ATTACHMENT_BYTES)
    for upload in files:
        if upload.size is not None and upload.size > limit:
            return gettext("The file %(name)s is larger than %(mb)d MB and was not accepted.") % {
                "name": upload.name,
                "mb": limit // 1_000_000,
            }
    return ""


def _keep_attachments(instance_id: Any, files: Iterable[UploadedFile]) -> None:
    """Store the files of this POST not stored before (a split upload adds the rest)."""
    submission = Submission.objects.get(instance_id=instance_id)
    for upload in files:
        name = (upload.name or "attachment").rsplit("/", 1)[-1][:255]
        if Attachment.objects.filter(submission=submission, name=name).exists():
            continue
        digest = hashlib.sha256()
        for chunk in upload.chunks():
            digest.update(chunk)
        upload.seek(0)
        try:
            with transaction.atomic():
                Attachment.objects.create(
                    submission=submission,
                    name=name,
                    file=upload,
                    size=upload.size or 0,
                    sha256=digest.hexdigest(),
                    content_type=(upload.content_type or "")[:100],
                )
        except IntegrityError:  # the same file in a concurrent identical POST
            continue


def language_from(accept_language: str) -> str:
    """The interview language Collect's request suggests (kk, ru or en), or ''."""
    for part in accept_language.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in INTERFACE_LANGUAGES:
            return code
    return ""
