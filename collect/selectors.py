"""Reads for the enumerators' channel."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import QuerySet

from collect.models import Assignment, Device
from config import rows
from surveys.models import Channel, FormVersion, ReviewStatus, Submission


def assignments_for(enumerator: Any) -> QuerySet[Assignment]:
    return (
        Assignment.objects.filter(enumerator=enumerator)
        .select_related("wave", "wave__survey", "region", "form_version")
        .with_progress()
        .order_by("wave__code", "region__code", "settlement", "pk")
    )


def form_version_for(enumerator: Any, pk: int) -> FormVersion | None:
    """A version the enumerator may need: any version of a survey they have work in (an
    old version stays available while a draft on a tablet uses it)."""
    surveys = Assignment.objects.filter(enumerator=enumerator).values("wave__survey_id")
    return FormVersion.objects.filter(pk=pk, survey_id__in=surveys).first()


def returned_to(enumerator: Any) -> QuerySet[Submission]:
    """This enumerator's tablet interviews rejected in review and not yet corrected."""
    return (
        Submission.objects.filter(
            enumerator=enumerator,
            channel=Channel.TABLET,
            review_status=ReviewStatus.REJECTED,
            replaced_by__isnull=True,
        )
        .select_related("tablet", "reviewed_by", "form_version")
        .order_by("reviewed_at", "pk")
    )


# Questionnaire versions are immutable once imported (a changed workbook needs a new
# version), so a process keeps the ones it has parsed: a sync request then reads a short
# row instead of a definition of a few hundred kilobytes.
_VERSIONS: dict[tuple[int, str, Any], FormVersion] = {}
_VERSIONS_KEPT = 64


def form_versions(
    ids: list[int], known: dict[int, tuple[int, str, Any]] | None = None
) -> dict[int, FormVersion]:
    """The versions of ``ids`` that exist. ``known``: keys (id, workbook digest, time)
    already read with another row (an assignment's own version), not asked again."""
    known = known or {}
    keys = [known[pk] for pk in ids if pk in known]
    rest = [pk for pk in ids if pk not in known]
    if rest:
        keys += FormVersion.objects.filter(pk__in=rest).values_list(
            "pk", "xlsform_sha256", "created_at"
        )
    missing = [key[0] for key in keys if key not in _VERSIONS]
    if missing:
        if len(_VERSIONS) + len(missing) > _VERSIONS_KEPT:
            _VERSIONS.clear()
        for version in FormVersion.objects.filter(pk__in=missing).select_related("survey"):
            _VERSIONS[(version.pk, version.xlsform_sha256, version.created_at)] = version
    return {key[0]: _VERSIONS[key] for key in keys if key in _VERSIONS}


@cache
def _device_sql(vendor: str) -> str:
    user = get_user_model()
    return (
        f"SELECT {rows.select_list(Device, 'd')}, {rows.select_list(user, 'u')} "
        f"FROM {rows.table(Device)} d JOIN {rows.table(user)} u "
        f"ON {rows.column(user, 'id', 'u')} = {rows.column(Device, 'enumerator', 'd')} "
        f"WHERE {rows.column(Device, 'token_prefix', 'd')} = %s"
    )


def device_with_prefix(prefix: str) -> Device | None:
    """The device whose token starts with ``prefix``, its enumerator attached. Asked on
    every request of a tablet or of ODK Collect, so in SQL written once (`collect.rows`)."""
    with rows.cursor() as cursor:
        cursor.execute(_device_sql(connection.vendor), [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    n = rows.width(Device)
    device = rows.build(Device, row[:n])
    enumerator = rows.build(get_user_model(), row[n:])
    assert device is not None and enumerator is not None
    device.enumerator = enumerator
    return device
