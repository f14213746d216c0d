"""Indirect designs against R's survey package (reference/indirect_reference.R)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.stats.estimation import CalibrationInfo, Design
from analytics.stats.indirect import (
    contrast,
    crosswise_terms,
    forced_response_terms,
    list_experiment_terms,
    with_gap,
)

REFERENCE = Path(__file__).parent / "reference"
RTOL = 1e-6
P_TRUTH, P_YES, P_UNRELATED = 4 / 6, 1 / 6, 0.25


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "indirect_sample.csv")


@pytest.fixture(scope="module")
def r_values() -> dict[str, float]:
    table = pd.read_csv(REFERENCE / "indirect_reference.csv")
    return dict(zip(table["key"], table["value"].astype(float), strict=True))


def _terms(frame: pd.DataFrame, design_name: str, domain: np.ndarray | None):
    if design_name == "list":
        return list_experiment_terms(
            frame["count"].to_numpy(float), frame["treated"].to_numpy() == 1, domain
        )
    if design_name == "forced":
        return forced_response_terms(
            frame["rr_yes"].to_numpy(float), p_truth=P_TRUTH, p_yes=P_YES, domain=domain
        )
    return crosswise_terms(frame["cw_same"].to_numpy(float), p_unrelated=P_UNRELATED, domain=domain)


def _check(result: dict[str, float], r_values: dict[str, float], key: str) -> None:
    assert result["estimate"] == pytest.approx(r_values[f"{key}.estimate"], rel=RTOL)
    assert result["se"] == pytest.approx(r_values[f"{key}.se"], rel=RTOL)


def _design(frame: pd.DataFrame, weight: str = "w", calibration=None) -> Design:
    return Design(
        frame[weight].to_numpy(float),
        strata=frame["stratum"].to_numpy(),
        psu=frame["psu"].to_numpy(),
        calibration=calibration,
    )


@pytest.mark.parametrize("design_name", ["list", "forced", "crosswise"])
def test_national_prevalence_and_gap_match_r(sample, r_values, design_name):
    design = _design(sample)
    terms, constant = _terms(sample, design_name, None)
    _check(contrast(design, terms, constant=constant), r_values, f"national.{design_name}")
    gap_terms, constant = with_gap(
        _terms(sample, design_name, None), sample["direct"].to_numpy(float)
    )
    _check(contrast(design, gap_terms, constant=constant), r_values, f"national.{design_name}.gap")
    assert contrast(design, terms, constant=constant)["df"] == r_values["degf"]


@pytest.mark.parametrize("region", [1, 2, 3, 4])
@pytest.mark.parametrize("design_name", ["list", "forced", "crosswise"])
def test_regional_prevalence_and_gap_match_r(sample, r_values, design_name, region):
    design = _design(sample)
    inside = sample["region"].to_numpy() == region
    terms, constant = _terms(sample, design_name, inside)
    _check(contrast(design, terms, constant=constant), r_values, f"region{region}.{design_name}")
    gap_terms, constant = with_gap(
        _terms(sample, design_name, inside), sample["direct"].to_numpy(float), inside
    )
    _check(
        contrast(design, gap_terms, constant=constant),
        r_values,
        f"region{region}.{design_name}.gap",
    )


@pytest.mark.parametrize("design_name", ["list", "forced", "crosswise"])
def test_post_stratified_weights_match_r(sample, r_values, design_name):
    cells = (sample["region"] * 10 + sample["sex"]).to_numpy()
    design = _design(sample, "w_ps", CalibrationInfo(kind="poststratify", cells=[cells]))
    terms, constant = _terms(sample, design_name, None)
    _check(contrast(design, terms, constant=constant), r_values, f"poststratified.{design_name}")
    gap_terms, constant = with_gap(
        _terms(sample, design_name, None), sample["direct"].to_numpy(float)
    )
    _check(
        contrast(design, gap_terms, constant=constant),
        r_values,
        f"poststratified.{design_name}.gap",
    )


def test_an_estimate_outside_zero_one_is_kept_and_flagged():
    """Four respondents, the treated ones counting fewer items: a negative prevalence."""
    design = Design(np.ones(4), strata=np.array([1, 1, 2, 2]), psu=np.array([1, 2, 3, 4]))
    terms, constant = list_experiment_terms(
        np.array([1.0, 3.0, 1.0, 3.0]), np.array([True, False, True, False])
    )
    result = contrast(design, terms, constant=constant)
    assert result["estimate"] == pytest.approx(-2.0)
    assert result["outside_unit_interval"] is True


def test_impossible_randomiser_settings_are_refused():
    with pytest.raises(ValueError):
        forced_response_terms(np.ones(3), p_truth=0.9, p_yes=0.2)
    with pytest.raises(ValueError):
        crosswise_terms(np.ones(3), p_unrelated=0.5)
