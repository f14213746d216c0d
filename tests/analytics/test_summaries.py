"""Weighted question summaries against R's survey package (reference/summaries_reference.R)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.stats.estimation import Design
from analytics.stats.summaries import multiple_choice, single_choice

REFERENCE = Path(__file__).parent / "reference"
RTOL = 1e-6
CODES = [1, 2, 3, 4, -1, -2]


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "summaries_sample.csv")


@pytest.fixture(scope="module")
def r_values() -> dict[str, float]:
    table = pd.read_csv(REFERENCE / "summaries_reference.csv")
    return dict(zip(table["key"], table["value"].astype(float), strict=True))


@pytest.fixture(scope="module")
def design(sample) -> Design:
    return Design(
        sample["w"].to_numpy(float),
        strata=sample["stratum"].to_numpy(),
        psu=sample["psu"].to_numpy(),
    )


def _check(row: pd.Series, r_values: dict[str, float], key: str) -> None:
    for column in ("estimate", "se", "ci_low", "ci_high"):
        assert row[column] == pytest.approx(r_values[f"{key}.{column}"], rel=RTOL), (key, column)


def test_single_choice_shares_match_r_with_dont_know_and_refused_as_codes(sample, r_values, design):
    table = single_choice(design, sample["q"].to_numpy(float), CODES)
    assert list(table["code"]) == CODES
    for _, row in table.iterrows():
        _check(row, r_values, f"q.{int(row['code'])}")
    # not applicable (-3) and no answer are out of the base; the shares add up to one
    q = sample["q"]
    assert set(table["n_base"]) == {int(q.isin(CODES).sum())}
    assert table["estimate"].sum() == pytest.approx(1.0)
    assert list(table["n"]) == [int((q == c).sum()) for c in CODES]


def test_single_choice_by_sex_matches_r(sample, r_values, design):
    sex = sample["sex"].to_numpy() - 1
    table = single_choice(design, sample["q"].to_numpy(float), CODES, domain_codes=sex, n_domains=2)
    for _, row in table.iterrows():
        _check(row, r_values, f"q.{int(row['code'])}.sex{int(row['domain']) + 1}")
    for domain, rows in table.groupby("domain"):
        assert rows["estimate"].sum() == pytest.approx(1.0)
        in_domain = sample[sample["sex"] == domain + 1]
        assert set(rows["n_base"]) == {int(in_domain["q"].isin(CODES).sum())}


def test_multiple_choice_shares_of_respondents_match_r(sample, r_values, design):
    answered = sample["answered"].to_numpy() == 1
    chosen = {opt: sample[opt].fillna(0).to_numpy() == 1 for opt in ("m1", "m2", "m3")}
    table = multiple_choice(design, chosen, answered)
    for _, row in table.iterrows():
        _check(row, r_values, row["code"])
    assert table["estimate"].sum() > 1  # people may tick several options
    by_sex = multiple_choice(
        design, chosen, answered, domain_codes=sample["sex"].to_numpy() - 1, n_domains=2
    )
    for _, row in by_sex.iterrows():
        _check(row, r_values, f"{row['code']}.sex{row['domain'] + 1}")


def test_a_question_nobody_was_asked_has_no_shares(design, sample):
    table = single_choice(design, np.full(len(sample), np.nan), [1, 2])
    assert table["estimate"].isna().all() and set(table["n_base"]) == {0}
