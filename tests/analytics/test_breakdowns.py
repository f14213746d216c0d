"""The breakdown domains: which interviews fall into which group."""

from __future__ import annotations

import numpy as np
import pytest
from django.utils import translation

from analytics.breakdowns import BREAKDOWN_KEYS, BREAKDOWNS, BY_KEY, group_codes
from analytics.snapshot import ANSWER_COLUMNS


def columns(**values: list[int]) -> dict[str, np.ndarray]:
    n = len(next(iter(values.values())))
    base = {c: np.full(n, -9, np.int16) for c in ("SEX", "AGE", "BIRTH_YEAR", "EDU", "EMP")}
    base |= {"SETTLEMENT": np.full(n, -9, np.int16), "urban_rural": np.ones(n, np.int8)}
    base.update({k: np.asarray(v) for k, v in values.items()})
    return base


def test_keys_are_the_documented_domains() -> None:
    assert BREAKDOWN_KEYS == [
        "sex",
        "age_band",
        "urban_rural",
        "education",
        "employment",
        "settlement_type",
    ]


def test_snapshot_holds_every_column_a_breakdown_reads() -> None:
    for b in BREAKDOWNS:
        assert set(b.columns) - {"urban_rural"} <= set(ANSWER_COLUMNS)


def test_sex_refusal_is_in_no_group() -> None:
    codes = BY_KEY["sex"].codes(columns(SEX=[1, 2, -2, -9]), year=2026)
    assert codes.tolist() == [0, 1, -1, -1]


@pytest.mark.parametrize(
    ("age", "born", "band"),
    [(18, -9, 0), (29, -9, 0), (30, -9, 1), (44, -9, 1), (45, -9, 2), (59, -9, 2), (60, -9, 3)]
    + [
        (-9, 1996, 1),
        (-9, 1997, 0),
        (-9, 1967, 2),
        (-9, 1966, 3),
        (-9, 1900, -1),
        (17, -9, -1),
        (-9, -2, -1),
    ],
)
def test_age_band_from_age_or_birth_year(age: int, born: int, band: int) -> None:
    codes = BY_KEY["age_band"].codes(columns(AGE=[age], BIRTH_YEAR=[born]), year=2026)
    assert codes.tolist() == [band]


def test_education_groups_higher_levels_together() -> None:
    codes = BY_KEY["education"].codes(columns(EDU=[1, 2, 3, 4, 5, 6, -2, 7]), year=2026)
    assert codes.tolist() == [0, 1, 2, 3, 3, 3, -1, -1]


def test_employment_settlement_and_urban() -> None:
    cols = columns(EMP=[1, 7, -2], SETTLEMENT=[1, 4, -9], urban_rural=[1, 2, 2])
    out = group_codes(cols, year=2026)
    assert out["employment"].tolist() == [0, 6, -1]
    assert out["settlement_type"].tolist() == [0, 3, -1]
    assert out["urban_rural"].tolist() == [0, 1, 1]
    assert all(v.dtype == np.int64 for v in out.values())


@pytest.mark.parametrize("language", ["kk", "ru"])
def test_titles_and_labels_are_translated(language: str) -> None:
    for b in BREAKDOWNS:
        with translation.override("en"):
            english = [str(b.title), *(str(g.label) for g in b.groups)]
        with translation.override(language):
            local = [str(b.title), *(str(g.label) for g in b.groups)]
        for en, other in zip(english, local, strict=True):
            assert en != other, (language, en)
