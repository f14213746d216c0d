"""The per-cell fast path gives exactly what Design gives on the interviews themselves."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.stats.cells import CellDesign, CellIndex, add_sums, cell_sums
from analytics.stats.estimation import Design

FIELDS = ["estimate", "se", "ci_low", "ci_high", "df", "n", "n_eff", "deff"]


@pytest.fixture
def sample():
    rng = np.random.default_rng(3)
    n = 20_000
    region = rng.integers(0, 12, n)
    stratum = region * 2 + rng.integers(0, 2, n)
    psu = rng.integers(0, 30, n)
    psu[stratum == 5] = 7  # a stratum with a single PSU
    psu[region == 3] = rng.integers(0, 2, (region == 3).sum())
    stratum[region == 10] = 22  # PSUs of stratum 22 hold two regions
    w = rng.lognormal(0, 0.5, n)
    y = (rng.random(n) < 0.3).astype(float)
    y[rng.random(n) < 0.1] = np.nan
    num = rng.integers(0, 5, n).astype(float)
    den = rng.integers(0, 4, n).astype(float)
    num[den == 0] = np.nan
    den[den == 0] = np.nan
    return dict(n=n, region=region, stratum=stratum, psu=psu, w=w, y=y, num=num, den=den)


@pytest.mark.parametrize("ratio", [False, True])
def test_cells_equal_the_row_design_for_nation_domains_and_vs_rest(sample, ratio):
    s = sample
    unit_of = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    index = CellIndex()
    half = s["n"] // 2  # added in two batches, as new interviews arrive
    index.add_rows(s["stratum"][:half], s["psu"][:half], s["region"][:half])
    index.add_rows(s["stratum"][half:], s["psu"][half:], s["region"][half:])
    yy, dd = (s["num"], s["den"]) if ratio else (s["y"], None)
    ci = "wald" if ratio else "korn-graubard"
    first = cell_sums(
        index.row_cell[:half],
        index.n_cells,
        s["w"][:half],
        yy[:half],
        None if dd is None else dd[:half],
    )
    second = cell_sums(
        index.row_cell[half:],
        index.n_cells,
        s["w"][half:],
        yy[half:],
        None if dd is None else dd[half:],
    )
    sums = add_sums(first, second, index.n_cells)
    rows = Design(s["w"], strata=s["stratum"], psu=s["psu"])
    cells = CellDesign(index.cell_psu, index.psu_stratum)
    assert cells.df == rows.df
    for row_codes, cell_codes, k in (
        (np.zeros(s["n"], int), np.zeros(index.n_cells, int), 1),
        (s["region"], index.cell_region, 12),
        (unit_of[s["region"]], unit_of[index.cell_region], 6),
    ):
        expected = rows.ratio(
            yy, dd, domain_codes=row_codes, n_domains=k, ci=ci, df_method="domain"
        )
        got = cells.estimate(sums, cell_codes, k, ci=ci)
        for field in FIELDS:
            np.testing.assert_allclose(
                got[field], expected[field].to_numpy(), rtol=1e-9, err_msg=field
            )
        if k > 1:
            expected = rows.domains_vs_rest(yy, domain_codes=row_codes, n_domains=k, den=dd)
            got = cells.versus_rest(sums, cell_codes, k)
            for field in ("estimate", "se", "p_value"):
                np.testing.assert_allclose(got[field], expected[field].to_numpy(), rtol=1e-9)


def test_appending_rows_keeps_existing_cell_ids():
    index = CellIndex()
    index.add_rows(np.array([0, 0, 1]), np.array([5, 6, 5]), np.array([1, 1, 2]))
    before = index.row_cell.copy()
    index.add_rows(np.array([1, 2, 0]), np.array([5, 9, 5]), np.array([2, 3, 1]))
    assert index.row_cell[:3].tolist() == before.tolist()
    assert index.row_cell[3:].tolist() == [before[2], 3, before[0]]
    assert index.psu_stratum.tolist() == [0, 0, 1, 2]
