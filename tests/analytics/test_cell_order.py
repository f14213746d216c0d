"""Shortcuts of the cell path that must give the very same numbers as the long way: the
variance sums over the cells in their order (``Pairs.cell_key``) instead of gathered into
pairs, and the indirect designs' regional cells from per-cell term sums (means summed over
the rows as the row path sums them)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest

from analytics.indirect_cells import IndirectEngine
from analytics.stats.cells import CellDesign, CellIndex, cell_sums
from analytics.stats.indirect import crosswise_terms, list_experiment_terms, with_gap


def _rows(seed: int, n: int = 12_000):
    rng = np.random.default_rng(seed)
    region = rng.integers(0, 9, n)
    stratum = region * 2 + rng.integers(0, 2, n)
    psu = rng.integers(0, 25, n)
    psu[stratum == 5] = 4  # a stratum with a single PSU
    return rng, region, stratum, psu, rng.lognormal(0, 0.5, n)


def _cells(region, stratum, psu):
    index = CellIndex()
    index.add_rows(stratum, psu, region)
    return index, CellDesign(index.cell_psu, index.psu_stratum)


@pytest.mark.parametrize("ratio", [False, True])
def test_sums_in_cell_order_equal_the_pairs_sums_bit_for_bit(ratio):
    rng, region, stratum, psu, w = _rows(5)
    num = (rng.random(len(w)) < 0.3).astype(float)
    num[rng.random(len(w)) < 0.2] = np.nan
    den = rng.integers(1, 4, len(w)).astype(float) if ratio else None
    index, design = _cells(region, stratum, psu)
    sums = cell_sums(index.row_cell, index.n_cells, w, num, den)
    for codes, k in ((np.where(index.cell_region < 7, index.cell_region, -1), 7),):
        pairs = design.pairs(codes, k)
        assert pairs.cell_key is not None  # one cell per pair, in the pairs' order
        long_way = replace(pairs, cell_key=None)
        for ci in ("korn-graubard", "wald"):
            fast = design.estimate(sums, codes, k, ci=ci, pairs=pairs)
            slow = design.estimate(sums, codes, k, ci=ci, pairs=long_way)
            for key in slow:
                assert np.array_equal(fast[key], slow[key], equal_nan=True), key
        fast = design.versus_rest(sums, codes, k, pairs=pairs)
        slow = design.versus_rest(sums, codes, k, pairs=long_way)
        for key in slow:
            assert np.array_equal(fast[key], slow[key], equal_nan=True), key


def test_cells_out_of_the_pairs_order_take_the_long_way():
    design = CellDesign(np.array([1, 0]), np.array([0, 0]))
    assert design.pairs(np.array([0, 0]), 1).cell_key is None  # PSU 1's cell comes first
    assert design.pairs(np.array([0, 1]), 2).cell_key is not None  # one cell per domain
    design = CellDesign(np.array([0, 0, 1]), np.array([0, 0]))
    assert design.pairs(np.array([0, 0, 0]), 1).cell_key is None  # two cells in PSU 0
    assert design.pairs(np.array([0, -1, 0]), 1).cell_key is not None


@dataclass
class _Set:
    regions: list
    codes: np.ndarray
    lookup: np.ndarray

    def codes_of(self, region_ids: np.ndarray) -> np.ndarray:
        return self.lookup[region_ids]


@dataclass
class _Indicator:
    make: object

    def terms(self, columns, domain):
        return self.make()


@pytest.mark.parametrize("seed", [1, 2])
def test_indirect_regional_cells_from_cell_sums_equal_the_row_path(seed):
    rng, region, stratum, psu, w = _rows(seed)
    n = len(w)
    treated = rng.integers(0, 2, n) == 1
    count = rng.integers(0, 4, n) + (treated & (rng.random(n) < 0.3))
    count = np.where(rng.random(n) < 0.05, np.nan, count.astype(float))
    same = np.where(rng.random(n) < 0.05, np.nan, (rng.random(n) < 0.6).astype(float))
    direct = np.where(rng.random(n) < 0.1, np.nan, (rng.random(n) < 0.15).astype(float))
    cols = {"stratum": stratum, "psu": stratum * 100 + psu}
    regions = list(range(8))  # region 8 is in no domain
    units = np.array([0, 0, 1, 1, 2, 3, 3, 4, -1])  # a second set: regions pooled
    sets = [
        _Set(regions, np.where(region < 8, region, -1), np.array([*range(8), -1])),
        _Set(list(range(5)), units[region], units),
    ]
    indicators = [
        _Indicator(lambda: list_experiment_terms(count, treated)),
        _Indicator(lambda: with_gap(list_experiment_terms(count, treated), direct)),
        _Indicator(lambda: crosswise_terms(same, p_unrelated=0.25)),
        _Indicator(lambda: with_gap(crosswise_terms(same, p_unrelated=0.25), direct)),
    ]
    index, _ = _cells(region, stratum, psu)
    rows = IndirectEngine(w, None, cols, sets)
    cells = IndirectEngine(w, None, cols, sets, cells=index)
    assert cells.cells is not None and rows.cells is None
    for indicator in indicators:
        national, by_set = rows.indicator(indicator)
        national_c, by_set_c = cells.indicator(indicator)
        for (stats, versus), (stats_c, versus_c) in zip(
            [(national, None), *by_set], [(national_c, None), *by_set_c], strict=True
        ):
            for key in ("estimate", "n", "n_num", "df"):  # the same sums in the same order
                assert np.array_equal(stats[key], stats_c[key], equal_nan=True), key
            for key in ("se", "ci_low", "ci_high", "deff", "n_eff"):
                np.testing.assert_allclose(stats_c[key], stats[key], rtol=1e-12, atol=0)
            if versus is not None:
                assert np.array_equal(versus["estimate"], versus_c["estimate"], equal_nan=True)
                np.testing.assert_allclose(versus_c["se"], versus["se"], rtol=1e-12, atol=0)
                np.testing.assert_allclose(versus_c["p_value"], versus["p_value"], rtol=1e-10)
