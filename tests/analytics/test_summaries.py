"""Weighted question summaries against R's survey package (reference/summaries_reference.R)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.stats import summaries as fast
from analytics.stats.estimation import CalibrationInfo, Design
from analytics.stats.summaries import (
    SHARE_FIELDS,
    multiple_choice,
    multiple_choice_items,
    shares,
    single_choice,
    single_choice_items,
)

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


# ---------------------------------------------------------------------- the fast path


def _per_share(design, kind, data, domain_codes, n_domains):
    """The per-share reference (`single_choice` / `multiple_choice`) as (k, m) arrays."""
    domains = {} if domain_codes is None else {"domain_codes": domain_codes, "n_domains": n_domains}
    if kind == "one":
        values, codes = data
        table = single_choice(design, values, codes, **domains)
    else:
        chosen, answered = data
        table = multiple_choice(design, dict(enumerate(chosen)), answered, **domains)
    k = 1 if domain_codes is None else n_domains
    return {f: table[f].to_numpy(float).reshape(k, -1) for f in SHARE_FIELDS}


def _random_design(rng, n, calibration):
    strata = rng.integers(0, 6, n)
    psu = strata * 100 + rng.integers(0, 5, n)
    psu[strata == 5] = 500  # a lonely PSU
    weight = rng.gamma(2.0, 1.5, n)
    info = None
    if calibration == "poststratify":
        info = CalibrationInfo("poststratify", (rng.integers(0, 4, n),))
    elif calibration == "rake":
        info = CalibrationInfo("rake", (rng.integers(0, 3, n), rng.integers(0, 4, n)))
    else:
        weight[rng.random(n) < 0.03] = 0.0  # zero weights count in no n
    return Design(weight, strata=strata, psu=psu, calibration=info)


@pytest.mark.parametrize("calibration", [None, "poststratify", "rake"])
def test_the_fast_path_gives_the_per_share_results_on_random_designs(calibration, monkeypatch):
    rng = np.random.default_rng(7 if calibration is None else len(calibration))
    n = 700
    design = _random_design(rng, n, calibration)
    # a select_one question with special codes, not-asked rows and a code nobody gave
    values = rng.choice([1, 2, 3, -1, -2, -3, -9, np.nan], n, p=[0.3, 0.2, 0.2] + [0.06] * 5)
    one = (values, [1, 2, 3, 4, -1, -2])
    answered = rng.random(n) < 0.8
    several = ([answered & (rng.random(n) < p) for p in (0.5, 0.1, 0.02)], answered)
    sex = rng.integers(0, 2, n)
    region = rng.integers(-1, 6, n)  # -1: in no region; region 5 of 7 is empty below
    region[region == 5] = 6
    for domain_codes, n_domains in ((None, None), (sex, 2), (region, 7)):
        for kind, data in (("one", one), ("several", several)):
            expected = _per_share(design, kind, data, domain_codes, n_domains)
            hits, base = (
                single_choice_items(*data) if kind == "one" else multiple_choice_items(*data)
            )
            domains = {"domain_codes": domain_codes, "n_domains": n_domains}
            one_base = np.zeros(len(hits), dtype=np.int64)
            got = [
                shares(design, hits, np.broadcast_to(base, hits.shape), **domains),
                shares(design, hits, base[None, :], base_of=one_base, **domains),
            ]
            with monkeypatch.context() as patched:
                patched.setattr(fast, "CHUNK_CELLS", 1)  # one item per pass
                got.append(shares(design, hits, base[None, :], base_of=one_base, **domains))
            for result in got:
                for field in SHARE_FIELDS:
                    np.testing.assert_allclose(
                        result[field], expected[field], rtol=1e-12, atol=1e-12, err_msg=field
                    )


def test_the_fast_path_matches_r_in_chunks_of_a_few_items(sample, r_values, design, monkeypatch):
    monkeypatch.setattr(fast, "CHUNK_CELLS", 2 * design.n_psu)  # two items per pass, one by sex
    hits, in_base = single_choice_items(sample["q"].to_numpy(float), CODES)
    base = np.broadcast_to(in_base, hits.shape)
    sex = sample["sex"].to_numpy() - 1
    whole = shares(design, hits, base)
    by_sex = shares(design, hits, base, domain_codes=sex, n_domains=2)
    for j, code in enumerate(CODES):
        for column in ("estimate", "se", "ci_low", "ci_high"):
            assert whole[column][0, j] == pytest.approx(r_values[f"q.{code}.{column}"], rel=RTOL)
            for g in (0, 1):
                key = f"q.{code}.sex{g + 1}.{column}"
                assert by_sex[column][g, j] == pytest.approx(r_values[key], rel=RTOL)
    assert list(whole["n"][0]) == [int((sample["q"] == c).sum()) for c in CODES]
