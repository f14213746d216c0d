"""The supervisor's flags, each at the edge of its rule."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from surveys.quality import (
    InterviewRecord,
    distance_km,
    far_from_settlement,
    many_dont_know,
    near_duplicates,
    off_hours,
    outside_fieldwork,
    straight_lining,
    too_short,
)

ALMATY = ZoneInfo("Asia/Almaty")
TRUST = ["TR_GOV", "TR_CRT", "TR_POL", "TR_AKM", "TR_PAR", "TR_MED", "TR_NGO"]


def at(hour: int, minute: int = 0, day: int = 10) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=ALMATY)


def test_too_short_is_under_a_third_of_the_median():
    assert too_short(InterviewRecord(1, {}, duration_seconds=299), 900).code == "too_short"
    assert too_short(InterviewRecord(1, {}, duration_seconds=300), 900) is None
    assert too_short(InterviewRecord(1, {}, duration_seconds=None), 900) is None
    assert too_short(InterviewRecord(1, {}, duration_seconds=10), None) is None


def test_outside_fieldwork_uses_the_local_date():
    start, end = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
    # 23:30 UTC on 30 November is already 1 December in Almaty
    late = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)
    flag = outside_fieldwork(InterviewRecord(1, {}, started_at=late), start, end, ALMATY)
    assert flag.detail == {"date": "2026-12-01"}
    assert outside_fieldwork(InterviewRecord(1, {}, started_at=at(12)), start, end, ALMATY) is None
    early = InterviewRecord(1, {}, started_at=at(12, day=1) - dt.timedelta(days=1))
    assert outside_fieldwork(early, start, end, ALMATY).code == "outside_fieldwork"


def test_off_hours_between_ten_at_night_and_seven_in_the_morning():
    assert off_hours(InterviewRecord(1, {}, started_at=at(22, 0)), ALMATY).detail == {
        "time": "22:00"
    }
    assert off_hours(InterviewRecord(1, {}, started_at=at(6, 59)), ALMATY).code == "off_hours"
    assert off_hours(InterviewRecord(1, {}, started_at=at(7, 0)), ALMATY) is None
    assert off_hours(InterviewRecord(1, {}, started_at=at(21, 59)), ALMATY) is None


def test_many_dont_know_counts_dont_know_and_refused_over_given_answers():
    closed = [f"Q{i}" for i in range(10)]
    answers = {f"Q{i}": 1 for i in range(10)} | {"Q0": -1, "Q1": -2, "Q2": -1}
    assert many_dont_know(InterviewRecord(1, answers), closed) is None  # 30% is not over
    answers["Q3"] = -2
    assert many_dont_know(InterviewRecord(1, answers), closed).detail == {
        "share": 0.4,
        "answers": 10,
    }
    # skipped questions are not answers: 4 of 5 given are missing
    skipped = {f"Q{i}": -3 for i in range(5, 10)}
    assert many_dont_know(InterviewRecord(1, answers | skipped), closed).detail["answers"] == 5


def test_straight_lining_needs_every_item_of_a_battery_the_same():
    same = {name: 2 for name in TRUST}
    assert [f.detail for f in straight_lining(InterviewRecord(1, same), {"trust": TRUST})] == [
        {"battery": "trust", "value": 2}
    ]
    varied = same | {"TR_NGO": 3}
    assert straight_lining(InterviewRecord(1, varied), {"trust": TRUST}) == []
    partial = {name: 2 for name in TRUST[:-1]}
    assert straight_lining(InterviewRecord(1, partial), {"trust": TRUST}) == []
    assert straight_lining(InterviewRecord(1, same), {"short": TRUST[:4]}) == []


def test_near_duplicates_pair_interviews_of_one_enumerator():
    closed = [f"Q{i}" for i in range(40)]
    base = {name: i % 4 + 1 for i, name in enumerate(closed)}
    copy = base | {"Q0": 9, "Q1": 9}  # 38 of 40 equal: 95%
    other = base | {f"Q{i}": 9 for i in range(3)}  # 37 of 40: 92.5%
    flags = near_duplicates(
        [InterviewRecord("a", base), InterviewRecord("b", copy), InterviewRecord("c", {})], closed
    )
    assert {k: f.detail["other"] for k, f in flags.items()} == {"a": "b", "b": "a"}
    assert near_duplicates([InterviewRecord("a", base), InterviewRecord("c", other)], closed) == {}
    few = [f"Q{i}" for i in range(19)]
    assert near_duplicates([InterviewRecord("a", base), InterviewRecord("b", base)], few) == {}


def test_distance_along_a_meridian_is_the_arc_of_the_mean_earth_radius():
    # One degree of latitude is pi * 6371.0088 / 180 = 111.1951 km on any meridian.
    assert distance_km((43.0, 76.9), (44.0, 76.9)) == pytest.approx(111.1951, abs=1e-4)
    # On the equator, a degree of longitude is the same arc.
    assert distance_km((0.0, 10.0), (0.0, 11.0)) == pytest.approx(111.1951, abs=1e-4)
    assert distance_km((43.25, 76.95), (43.25, 76.95)) == 0.0


def test_far_from_settlement_only_beyond_the_limit_and_with_a_real_fix():
    almaty = (43.25, 76.95)
    near = {"lat": 43.25 + 9.9 / 111.1951, "lon": 76.95, "accuracy": 12}
    far = {"lat": 43.25 + 10.1 / 111.1951, "lon": 76.95, "accuracy": 12}
    assert far_from_settlement(near, almaty, 10.0) is None
    flag = far_from_settlement(far, almaty, 10.0)
    assert flag is not None and flag.code == "far_from_settlement"
    assert flag.detail == {"km": 10.1, "limit_km": 10.0}
    assert far_from_settlement(far, almaty, 20.0) is None
    assert far_from_settlement(far, None, 10.0) is None  # the settlement's place is unknown
    for broken in (None, {}, {"lat": "43", "lon": 76}, {"lat": 95.0, "lon": 76.0}, "43,76"):
        assert far_from_settlement(broken, almaty, 10.0) is None
