"""The supervisor's review queue: interviews from tablets and ODK Collect, with their flags.

Reads only. The flags are the plain rules of `surveys.quality`, fed here with what each one
compares against: the median duration of the same questionnaire version in the wave, the
wave's fieldwork dates, the local time zone, the form's closed questions and batteries, and
the same enumerator's other interviews of the wave.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import QuerySet

from surveys import quality
from surveys.models import Channel, FormVersion, Submission

FIELD_CHANNELS = (Channel.TABLET, Channel.ODK)
NEAR_DUPLICATE_WINDOW = 300  # an enumerator's most recent interviews compared with each other
MIN_BATTERY = quality.MIN_BATTERY_ITEMS


@dataclass
class ReviewRow:
    submission: Submission
    flags: list[quality.Flag] = field(default_factory=list)


def queue(
    *,
    within: QuerySet[Submission] | None = None,
    wave_id: int | None = None,
    region_id: int | None = None,
    enumerator_id: int | None = None,
    assignment_id: int | None = None,
    status: str | None = None,
) -> QuerySet[Submission]:
    """Interviewer-collected interviews, newest first, filtered as the supervisor asked;
    ``within``: the interviews the supervisor may review (all when None)."""
    rows = (
        (Submission.objects.all() if within is None else within)
        .filter(channel__in=FIELD_CHANNELS)
        .select_related(
            "wave__survey__collect_settings",
            "region",
            "enumerator",
            "form_version",
            "tablet__assignment",
        )
    )
    if wave_id:
        rows = rows.filter(wave_id=wave_id)
    if region_id:
        rows = rows.filter(region_id=region_id)
    if enumerator_id:
        rows = rows.filter(enumerator_id=enumerator_id)
    if assignment_id:
        rows = rows.filter(tablet__assignment_id=assignment_id)
    if status:
        rows = rows.filter(review_status=status)
    return rows.order_by("-received_at", "-pk")


def closed_questions(definition: dict[str, Any]) -> list[str]:
    from surveys.definition import iter_questions

    return [q["name"] for q in iter_questions(definition) if q["type"] == "select_one"]


def batteries(definition: dict[str, Any]) -> dict[str, list[str]]:
    """Groups holding at least five select_one questions on one choice list (e.g. trust)."""
    found: dict[str, list[str]] = {}

    def visit(nodes: list[dict[str, Any]], group: str) -> None:
        by_list: dict[str, list[str]] = defaultdict(list)
        for node in nodes:
            if node["kind"] == "question" and node["type"] == "select_one":
                by_list[node.get("list_name", "")].append(node["name"])
            elif node["kind"] == "group":
                visit(node.get("children", []), node["name"])
        for list_name, names in by_list.items():
            if len(names) >= MIN_BATTERY:
                found[f"{group}:{list_name}"] = names

    visit(definition.get("children", []), "")
    return found


def flagged(submissions: Iterable[Submission]) -> list[ReviewRow]:
    """Each interview with the flags its record raises."""
    items = list(submissions)
    tz = ZoneInfo(settings.TIME_ZONE)
    medians = _median_durations({(s.wave_id, s.form_version_id) for s in items})
    duplicates = _near_duplicates(items)
    rows = []
    for s in items:
        definition = s.form_version.definition
        record = _record(s)
        flags = [
            flag
            for flag in (
                quality.too_short(record, medians.get((s.wave_id, s.form_version_id))),
                quality.outside_fieldwork(record, s.wave.fieldwork_start, s.wave.fieldwork_end, tz),
                quality.off_hours(record, tz),
                quality.many_dont_know(record, closed_questions(definition)),
            )
            if flag is not None
        ]
        flags += quality.straight_lining(record, batteries(definition))
        if s.pk in duplicates:
            flags.append(duplicates[s.pk])
        far = _far_from_settlement(s)
        if far is not None:
            flags.append(far)
        rows.append(ReviewRow(s, flags))
    return rows


def _far_from_settlement(s: Submission) -> quality.Flag | None:
    """Only where the survey records GPS and the assignment has the settlement's place."""
    setting = getattr(s.wave.survey, "collect_settings", None)
    tablet = getattr(s, "tablet", None)
    if setting is None or not setting.record_gps or tablet is None:
        return None
    flag = quality.far_from_settlement(
        tablet.paradata.get("gps"), tablet.assignment.coordinates, setting.gps_distance_km
    )
    if flag is not None:
        place = tablet.assignment.settlement or tablet.assignment.psu
        flag = quality.Flag(flag.code, {**flag.detail, "settlement": place})
    return flag


def _record(s: Submission) -> quality.InterviewRecord:
    return quality.InterviewRecord(
        key=s.pk, answers=s.answers, started_at=s.started_at, duration_seconds=s.duration_seconds
    )


def _median_durations(keys: set[tuple[int, int]]) -> dict[tuple[int, int], float]:
    medians = {}
    for wave_id, version_id in keys:
        durations = [
            d
            for d in Submission.objects.filter(
                wave_id=wave_id, form_version_id=version_id, duration_seconds__isnull=False
            ).values_list("duration_seconds", flat=True)[:20000]
            if d is not None
        ]
        if len(durations) >= 5:  # a median of a handful says little
            medians[(wave_id, version_id)] = float(statistics.median(durations))
    return medians


def _near_duplicates(items: list[Submission]) -> dict[int, quality.Flag]:
    flags: dict[int, quality.Flag] = {}
    pairs = {(s.wave_id, s.enumerator_id, s.form_version_id) for s in items if s.enumerator_id}
    for wave_id, enumerator_id, version_id in pairs:
        others = list(
            Submission.objects.filter(
                wave_id=wave_id, enumerator_id=enumerator_id, form_version_id=version_id
            )
            .order_by("-received_at")
            .values_list("pk", "instance_id", "answers")[:NEAR_DUPLICATE_WINDOW]
        )
        version = FormVersion.objects.get(pk=version_id)
        records = [quality.InterviewRecord(pk, answers) for pk, _, answers in others]
        names = {pk: str(instance) for pk, instance, _ in others}
        for pk, flag in quality.near_duplicates(
            records, closed_questions(version.definition)
        ).items():
            other = names.get(int(flag.detail["other"]), flag.detail["other"])
            flags[pk] = quality.Flag(flag.code, {**flag.detail, "other": other})
    return flags
