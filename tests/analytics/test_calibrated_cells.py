"""The cell path with raked weights equals the row path (Design with its calibration) to
1e-9: estimates, standard errors, effective sizes and region-vs-rest tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.stats.cells import CellCalibration, CellDesign, CellIndex, cell_sums
from analytics.stats.estimation import Design
from analytics.stats.weighting import rake, raking_info


def sample(seed: int, n: int = 3000):
    rng = np.random.default_rng(seed)
    region = rng.integers(0, 6, n)
    urban = rng.integers(0, 2, n)
    stratum = region * 2 + urban
    psu = rng.integers(0, 12, n)
    psu[stratum == 5] = 0  # a lonely PSU
    sexage = rng.integers(0, 5, n)
    base = rng.lognormal(0, 0.3, n)
    frame = pd.DataFrame({"region": region, "urban": urban, "sexage": sexage, "w": base})
    ru = frame.groupby(["region", "urban"]).size().rename("total").reset_index()
    ru["total"] = ru["total"] * rng.uniform(0.5, 1.5, len(ru))
    grand = ru["total"].sum()
    sa = pd.DataFrame({"sexage": range(5), "total": rng.dirichlet(np.ones(5)) * grand})
    margins = {("region", "urban"): ru, "sexage": sa}
    weight = rake(frame, weight="w", margins=margins, tol=1e-12, max_iter=500).to_numpy()
    info = raking_info(frame, list(margins))
    y = (rng.random(n) < 0.2 + 0.1 * region / 6).astype(float)
    y[rng.random(n) < 0.1] = np.nan
    den = rng.integers(1, 4, n).astype(float)
    den[rng.random(n) < 0.05] = np.nan
    # domains: regions (one outside every domain), and pairs of regions
    domains = np.where(region < 5, region, -1)
    pooled = region // 2
    return dict(
        stratum=stratum, psu=psu, region=region, weight=weight, info=info, y=y, den=den,
        sets=[(domains, 5), (pooled, 3)],
    )  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("ratio", [False, True])
def test_cells_with_raking_equal_the_rows(seed, ratio):
    s = sample(seed)
    den = s["den"] if ratio else None
    rows = Design(s["weight"], strata=s["stratum"], psu=s["psu"], calibration=s["info"])
    index = CellIndex()
    index.add_rows(s["stratum"], s["psu"], s["region"])
    design = CellDesign(index.cell_psu, index.psu_stratum)
    cal = CellCalibration(
        design, index.cell_psu[index.row_cell], s["region"], s["weight"], s["info"].cells
    )
    sums = cell_sums(index.row_cell, index.n_cells, s["weight"], s["y"], den)
    groups = cal.group_sums(s["y"], den)
    ci = "wald" if ratio else "korn-graubard"

    national = design.estimate(
        sums, np.zeros(index.n_cells, np.int64), 1, ci=ci,
        calibrated=(cal, groups, np.zeros(cal.n_groups, np.int64)),
    )  # fmt: skip
    expected = rows.ratio(s["y"], den, ci=ci, df_method="domain")
    for key in ("estimate", "se", "ci_low", "ci_high", "n_eff", "deff"):
        np.testing.assert_allclose(national[key], expected[key], rtol=1e-9, atol=1e-12)

    for codes, k in s["sets"]:
        lookup = np.full(cal.n_groups, -1)
        for region in range(cal.n_groups):
            found = codes[s["region"] == region]
            lookup[region] = found[0] if len(found) else -1
        cell_codes = lookup[index.cell_region]
        calibrated = (cal, groups, lookup)
        got = design.estimate(sums, cell_codes, k, ci=ci, calibrated=calibrated)
        want = rows.ratio(s["y"], den, domain_codes=codes, n_domains=k, ci=ci, df_method="domain")
        for key in ("estimate", "se", "ci_low", "ci_high", "n_eff", "deff", "df"):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-9, atol=1e-12)
        versus = design.versus_rest(sums, cell_codes, k, calibrated=calibrated)
        vs_rows = rows.domains_vs_rest(s["y"], domain_codes=codes, n_domains=k, den=den)
        for key in ("estimate", "se", "p_value"):
            np.testing.assert_allclose(versus[key], vs_rows[key], rtol=1e-9, atol=1e-12)


def test_the_calibration_changes_the_standard_errors():
    """The correction is not a no-op: without it the cell SEs differ from the rows'."""
    s = sample(4)
    rows = Design(s["weight"], strata=s["stratum"], psu=s["psu"], calibration=s["info"])
    index = CellIndex()
    index.add_rows(s["stratum"], s["psu"], s["region"])
    design = CellDesign(index.cell_psu, index.psu_stratum)
    sums = cell_sums(index.row_cell, index.n_cells, s["weight"], s["y"], None)
    plain = design.estimate(sums, np.zeros(index.n_cells, np.int64), 1, ci="wald")
    calibrated = rows.ratio(s["y"], None, ci="wald")
    assert abs(plain["se"][0] - calibrated["se"][0]) > 1e-6


@pytest.mark.django_db
def test_a_raked_wave_takes_the_cell_path_and_equals_the_row_path(monkeypatch):
    from analytics import computation, services
    from analytics import snapshot as snapshots
    from analytics.margins import parse_margins
    from tests.analytics.test_computation import REFERENCE, load_reference_wave

    wave = load_reference_wave()
    table = parse_margins((REFERENCE / "pipeline_margins.csv").read_bytes(), "m.csv", wave=wave)
    services.save_population_margins(wave=wave, table=table, source="test")
    snap, _ = snapshots.refresh(wave.pk)
    engines = []
    real = computation.CellEngine.indicator

    def spy(self, indicator):
        engines.append(self.calibration is not None)
        return real(self, indicator)

    monkeypatch.setattr(computation.CellEngine, "indicator", spy)
    cells = computation.compute_wave(wave, snap)
    assert cells.weights_version == "margins-v1" and engines and all(engines)
    monkeypatch.setattr(computation, "ROW_PATH_ONLY", True)
    rows = computation.compute_wave(wave, snap)
    assert len(cells.rows) == len(rows.rows)
    numeric = ["estimate", "se", "ci_low", "ci_high", "df", "n_eff", "deff", "diff_vs_rest",
               "diff_vs_rest_se", "diff_vs_rest_p", "diff_vs_rest_p_adjusted"]  # fmt: skip
    compared = 0
    for a, b in zip(cells.rows, rows.rows, strict=True):
        assert (a["indicator"], a["geography"], a["region"]) == (
            b["indicator"], b["geography"], b["region"],
        )  # fmt: skip
        assert a["suppressed"] == b["suppressed"] and a["n"] == b["n"]
        for key in numeric:
            x, y = a.get(key), b.get(key)
            assert (x is None) == (y is None), (a["indicator"], key)
            if x is not None:
                assert x == pytest.approx(y, rel=1e-9, abs=1e-12), (a["indicator"], key)
                compared += 1
    assert compared > 500
