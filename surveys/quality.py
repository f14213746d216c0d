"""Flags a supervisor looks at before approving an interview.

Each flag is a plain function of one interview's record (answers, times, duration) and of
what it is compared with (the form's median duration, the wave's fieldwork dates, the same
enumerator's other interviews), so the rules can be tested with numbers and shown with the
reason they fired. None of them rejects anything: they order the supervisor's queue.

- ``too_short``: under a third of the median duration of the same questionnaire version;
- ``outside_fieldwork``: started before the wave's fieldwork began or after it ended;
- ``off_hours``: started between 22:00 and 07:00 local time;
- ``many_dont_know``: over 30% of the closed answers are "don't know" (-1) or refused (-2);
- ``straight_lining``: every answer of a battery (at least 5 items, such as the trust
  items) is the same;
- ``near_duplicate``: 95% or more of the closed answers equal those of another interview by
  the same enumerator (at least 20 compared);
- ``far_from_settlement``: the interview's GPS fix (recorded only where the survey turns
  GPS on) lies farther than the survey's limit (10 km unless set) from the settlement of
  its assignment, by the great-circle (haversine) distance.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DONT_KNOW, REFUSED = -1, -2
SKIPPED_CODES = {-3, -9}  # not applicable, not asked: not an answer given
SHORT_SHARE = 1 / 3
NIGHT_FROM, NIGHT_UNTIL = 22, 7
NONRESPONSE_SHARE = 0.30
MIN_BATTERY_ITEMS = 5
DUPLICATE_SHARE = 0.95
MIN_COMPARED = 20
EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)


@dataclass(frozen=True)
class Flag:
    code: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class InterviewRecord:
    """What the rules read of one interview."""

    key: Any
    answers: Mapping[str, Any]
    started_at: dt.datetime | None = None
    duration_seconds: int | None = None


def closed_answers(answers: Mapping[str, Any], closed: Iterable[str]) -> dict[str, Any]:
    """The answers given to closed questions (select_one codes), skips left out."""
    out = {}
    for name in closed:
        value = answers.get(name)
        if isinstance(value, int) and value not in SKIPPED_CODES:
            out[name] = value
    return out


def too_short(record: InterviewRecord, median_seconds: float | None) -> Flag | None:
    if not median_seconds or record.duration_seconds is None:
        return None
    if record.duration_seconds < SHORT_SHARE * median_seconds:
        return Flag(
            "too_short",
            {"seconds": record.duration_seconds, "median_seconds": round(median_seconds)},
        )
    return None


def outside_fieldwork(
    record: InterviewRecord, start: dt.date | None, end: dt.date | None, tz: dt.tzinfo
) -> Flag | None:
    if record.started_at is None:
        return None
    day = record.started_at.astimezone(tz).date()
    if (start is not None and day < start) or (end is not None and day > end):
        return Flag("outside_fieldwork", {"date": day.isoformat()})
    return None


def off_hours(record: InterviewRecord, tz: dt.tzinfo) -> Flag | None:
    if record.started_at is None:
        return None
    local = record.started_at.astimezone(tz)
    if local.hour >= NIGHT_FROM or local.hour < NIGHT_UNTIL:
        return Flag("off_hours", {"time": local.strftime("%H:%M")})
    return None


def many_dont_know(record: InterviewRecord, closed: Sequence[str]) -> Flag | None:
    given = closed_answers(record.answers, closed)
    if not given:
        return None
    missing = sum(1 for v in given.values() if v in (DONT_KNOW, REFUSED))
    share = missing / len(given)
    if share > NONRESPONSE_SHARE:
        return Flag("many_dont_know", {"share": round(share, 3), "answers": len(given)})
    return None


def straight_lining(record: InterviewRecord, batteries: Mapping[str, Sequence[str]]) -> list[Flag]:
    flags = []
    for battery, items in batteries.items():
        if len(items) < MIN_BATTERY_ITEMS:
            continue
        given = closed_answers(record.answers, items)
        if len(given) == len(items) and len(set(given.values())) == 1:
            flags.append(
                Flag("straight_lining", {"battery": battery, "value": next(iter(given.values()))})
            )
    return flags


def near_duplicates(records: Sequence[InterviewRecord], closed: Sequence[str]) -> dict[Any, Flag]:
    """For interviews of one enumerator: each that nearly repeats another, with that other."""
    answered = [(r.key, closed_answers(r.answers, closed)) for r in records]
    flags: dict[Any, Flag] = {}
    for i, (key_a, a) in enumerate(answered):
        for key_b, b in answered[i + 1 :]:
            common = a.keys() & b.keys()
            if len(common) < MIN_COMPARED:
                continue
            share = sum(a[name] == b[name] for name in common) / len(common)
            if share >= DUPLICATE_SHARE:
                for key, other in ((key_a, key_b), (key_b, key_a)):
                    flags.setdefault(
                        key, Flag("near_duplicate", {"other": str(other), "share": round(share, 3)})
                    )
    return flags


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (latitude, longitude) points in degrees (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def gps_fix(gps: Any) -> tuple[float, float] | None:
    """A recorded fix (``{"lat", "lon", ...}``) as (latitude, longitude), or None when it
    is missing or not a position on Earth."""
    if not isinstance(gps, Mapping):
        return None
    lat, lon = gps.get("lat"), gps.get("lon")
    if not (isinstance(lat, int | float) and isinstance(lon, int | float)):
        return None
    if isinstance(lat, bool) or isinstance(lon, bool):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return (float(lat), float(lon))


def far_from_settlement(
    gps: Any, settlement: tuple[float, float] | None, limit_km: float
) -> Flag | None:
    fix = gps_fix(gps)
    if fix is None or settlement is None:
        return None
    km = distance_km(fix, settlement)
    if km > limit_km:
        return Flag("far_from_settlement", {"km": round(km, 1), "limit_km": limit_km})
    return None
