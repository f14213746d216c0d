"""Values recorded from R's survey package (reference/survey_reference.R writes
reference/survey_reference.csv) and the comparisons the estimation tests make with them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.stats.estimation import survey_mean

REFERENCE = Path(__file__).parent / "reference"
RTOL = 1e-6


def load_r_values() -> dict[str, float]:
    table = pd.read_csv(REFERENCE / "survey_reference.csv")
    return dict(zip(table["key"], table["value"].astype(float), strict=True))


def r_vector(r_values: dict[str, float], key: str) -> np.ndarray:
    """R's vector `key`, recorded element by element as key[1], key[2], ..."""
    values = []
    while f"{key}[{len(values) + 1}]" in r_values:
        values.append(r_values[f"{key}[{len(values) + 1}]"])
    assert values, key
    return np.array(values)


def assert_synthetic_means_match_r(
    frame: pd.DataFrame, design: dict, r_values: dict[str, float], key: str
) -> None:
    """Means (with missing values), their SEs and deffs, overall and by region, and the
    logit and Korn-Graubard intervals of a proportion, as R recorded them under `key`."""
    y = survey_mean(frame, "y_na", **design).iloc[0]
    assert y["estimate"] == pytest.approx(r_values[f"{key}.y.mean"], rel=RTOL)
    assert y["se"] == pytest.approx(r_values[f"{key}.y.se"], rel=RTOL)
    assert y["deff"] == pytest.approx(r_values[f"{key}.y.deff"], rel=RTOL)
    x = survey_mean(frame, "x", **design).iloc[0]
    assert x["estimate"] == pytest.approx(r_values[f"{key}.x.mean"], rel=RTOL)
    assert x["se"] == pytest.approx(r_values[f"{key}.x.se"], rel=RTOL)
    region = survey_mean(frame, "y_na", **design, domain="region")
    for column, r_name in [("estimate", "mean"), ("se", "se"), ("deff", "deff")]:
        np.testing.assert_allclose(
            region[column], r_vector(r_values, f"{key}.region.y.{r_name}"), rtol=RTOL
        )
    for ci, r_key in [("logit", "logit"), ("korn-graubard", "beta")]:
        row = survey_mean(frame, "y", **design, ci=ci).iloc[0]
        np.testing.assert_allclose(
            [row["ci_low"], row["ci_high"]], r_vector(r_values, f"{key}.ybin.{r_key}"), rtol=RTOL
        )
