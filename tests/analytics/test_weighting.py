"""Calibration weights and calibration-aware standard errors, against R's survey package
(postStratify / rake; values recorded by reference/survey_reference.R)."""

import numpy as np
import pandas as pd
import pytest

from analytics.stats.estimation import Design, domain_difference, survey_mean
from analytics.stats.weighting import (
    ConvergenceError,
    kish_deff,
    poststratification_info,
    poststratify,
    rake,
    raking_info,
    trim_weights,
    weight_summary,
)
from tests.analytics.r_reference import (
    REFERENCE,
    RTOL,
    assert_synthetic_means_match_r,
    load_r_values,
    r_vector,
)

R_ROWS = [0, 49, 99, 399, 699]  # rows whose calibrated weights R recorded (1-based there)


@pytest.fixture(scope="module")
def r_values() -> dict[str, float]:
    return load_r_values()


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "synthetic.csv")


@pytest.fixture(scope="module")
def margins() -> dict:
    return {
        ("sex", "age"): pd.read_csv(REFERENCE / "population_sex_age.csv"),
        "region": pd.read_csv(REFERENCE / "population_region.csv"),
    }


@pytest.fixture(scope="module")
def poststratified(synthetic) -> tuple[pd.DataFrame, object]:
    population = pd.read_csv(REFERENCE / "population_region_urban.csv")
    weights = poststratify(synthetic, weight="w", cells=["region", "urban"], population=population)
    frame = synthetic.assign(w=weights)
    return frame, poststratification_info(frame, ["region", "urban"])


@pytest.fixture(scope="module")
def raked(synthetic, margins) -> tuple[pd.DataFrame, object]:
    weights = rake(synthetic, weight="w", margins=margins, tol=1e-13, max_iter=500)
    frame = synthetic.assign(w=weights)
    return frame, raking_info(frame, margins)


# ------------------------------------------------------------------ weights


def test_poststratified_weights_match_r_and_population(poststratified, r_values):
    frame, _ = poststratified
    np.testing.assert_allclose(
        frame["w"].iloc[R_ROWS], r_vector(r_values, "syn.ps.weights"), rtol=1e-10
    )
    population = pd.read_csv(REFERENCE / "population_region_urban.csv")
    totals = frame.groupby(["region", "urban"])["w"].sum().reset_index()
    merged = totals.merge(population, on=["region", "urban"])
    np.testing.assert_allclose(merged["w"], merged["total"], rtol=1e-12)


def test_raked_weights_match_r_and_every_margin(raked, margins, r_values):
    frame, _ = raked
    np.testing.assert_allclose(
        frame["w"].iloc[R_ROWS], r_vector(r_values, "syn.rake.weights"), rtol=1e-8
    )
    by_region = frame.groupby("region")["w"].sum().to_numpy()
    np.testing.assert_allclose(by_region, margins["region"]["total"], rtol=1e-10)
    by_sex_age = frame.groupby(["sex", "age"])["w"].sum().reset_index()
    merged = by_sex_age.merge(margins[("sex", "age")], on=["sex", "age"])
    np.testing.assert_allclose(merged["w"], merged["total"], rtol=1e-10)


def test_rake_accepts_series_margins(synthetic, margins, raked):
    region = margins["region"].set_index("region")["total"]
    sex_age = margins[("sex", "age")].set_index(["sex", "age"])["total"]
    weights = rake(
        synthetic, weight="w", margins={("sex", "age"): sex_age, "region": region}, tol=1e-13
    )
    np.testing.assert_allclose(weights, raked[0]["w"], rtol=1e-10)


def test_poststratify_rejects_sample_cell_missing_from_population(synthetic):
    population = pd.read_csv(REFERENCE / "population_region_urban.csv")
    with pytest.raises(ValueError, match="missing from the population"):
        poststratify(synthetic, weight="w", cells=["region", "urban"], population=population[1:])


def test_poststratify_rejects_population_cell_without_sample(synthetic):
    population = pd.read_csv(REFERENCE / "population_region_urban.csv")
    extra = pd.concat([population, pd.DataFrame({"region": [6], "urban": [0], "total": [10.0]})])
    with pytest.raises(ValueError, match="no sample"):
        poststratify(synthetic, weight="w", cells=["region", "urban"], population=extra)


def test_rake_reports_gap_when_it_cannot_converge(synthetic, margins):
    with pytest.raises(ConvergenceError) as caught:
        rake(synthetic, weight="w", margins=margins, tol=1e-14, max_iter=2)
    assert caught.value.gap > 1e-14
    assert "did not converge" in str(caught.value)


def test_rake_rejects_margins_with_different_totals(synthetic, margins):
    region = margins["region"].assign(total=margins["region"]["total"] * 1.1)
    with pytest.raises(ValueError, match="grand totals"):
        rake(synthetic, weight="w", margins={**margins, "region": region})


def test_bounded_rake_respects_ratio_bounds(synthetic, margins):
    weights = rake(synthetic, weight="w", margins=margins, trim=(0.7, 1.6), max_iter=1000)
    ratio = weights / synthetic["w"]
    assert ratio.min() >= 0.7 - 1e-12
    assert ratio.max() <= 1.6 + 1e-12
    assert weights.groupby(synthetic["region"]).sum().to_numpy() == pytest.approx(
        margins["region"]["total"].to_numpy(), rel=1e-6
    )


def test_trim_weights_keeps_total_and_bounds():
    w = pd.Series([1.0, 1.0, 2.0, 3.0, 20.0])
    trimmed = trim_weights(w, upper=8.0)
    assert trimmed.sum() == pytest.approx(w.sum())
    assert trimmed.max() <= 8.0 + 1e-9
    assert trimmed.iloc[0] == pytest.approx(trimmed.iloc[1])


def test_weight_summary_and_kish_deff():
    w = np.array([1.0, 1.0, 2.0, 4.0])
    assert kish_deff(w) == pytest.approx(4 * 22 / 64)
    assert kish_deff(np.ones(7)) == 1.0
    summary = weight_summary(w)
    assert summary["ratio"] == 4.0
    assert summary["kish_deff"] == pytest.approx(1 + summary["cv"] ** 2)
    assert summary["n_eff"] == pytest.approx(4 / summary["kish_deff"])


# ------------------------------------------------------------------ SEs after calibration


@pytest.mark.parametrize("calibrated, key", [("poststratified", "syn.ps"), ("raked", "syn.rake")])
def test_calibrated_estimates_match_r(request, r_values, calibrated, key):
    frame, info = request.getfixturevalue(calibrated)
    design = {"weight": "w", "strata": "stratum", "psu": "psu", "calibration": info}
    assert_synthetic_means_match_r(frame, design, r_values, key)


@pytest.mark.parametrize("calibrated, key", [("poststratified", "syn.ps"), ("raked", "syn.rake")])
def test_calibrated_differences_and_ratios_match_r(request, r_values, calibrated, key):
    frame, info = request.getfixturevalue(calibrated)
    design = {"weight": "w", "strata": "stratum", "psu": "psu", "calibration": info}
    d24 = domain_difference(frame, "y_na", **design, domain="region", a=2, b=4)
    assert d24["estimate"] == pytest.approx(r_values[f"{key}.region.y.diff24"], rel=RTOL)
    assert d24["se"] == pytest.approx(r_values[f"{key}.region.y.diff24.se"], rel=RTOL)
    rest = domain_difference(frame, "y_na", **design, domain="region", a=3)
    assert rest["se"] == pytest.approx(r_values[f"{key}.region.y.diff3rest.se"], rel=RTOL)

    fast = Design(frame["w"], strata=frame["stratum"], psu=frame["psu"], calibration=info)
    num, den = frame["num"].to_numpy(float), frame["den"].to_numpy(float)
    overall = fast.ratio(num, den).iloc[0]
    assert overall["estimate"] == pytest.approx(r_values[f"{key}.ratio"], rel=RTOL)
    assert overall["se"] == pytest.approx(r_values[f"{key}.ratio.se"], rel=RTOL)
    assert overall["deff"] == pytest.approx(r_values[f"{key}.ratio.deff"], rel=RTOL)
    by_region = fast.ratio(num, den, domain_codes=frame["region"].to_numpy() - 1, n_domains=5)
    np.testing.assert_allclose(
        by_region["se"], r_vector(r_values, f"{key}.region.ratio.se"), rtol=RTOL
    )


def test_calibration_reduces_se_of_a_calibrated_variable(poststratified):
    # The share of urban respondents is fixed by post-stratification on region x urban:
    # its SE must collapse to (numerically) zero once calibration is taken into account.
    frame, info = poststratified
    design = {"weight": "w", "strata": "stratum", "psu": "psu"}
    ignoring = survey_mean(frame, "urban", **design).iloc[0]
    calibrated = survey_mean(frame, "urban", **design, calibration=info).iloc[0]
    assert ignoring["se"] > 0.01
    assert calibrated["se"] < 1e-12
