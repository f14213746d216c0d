"""The breakdown cells from per-cell sums equal the row path (``Design`` on the rows).

Random stratified cluster samples: PSUs that straddle two regions, interviews in no group,
unanswered items, a lonely PSU, means, proportions and a ratio; and the indirect designs
(contrasts of means, from their terms' cell sums) against `analytics.stats.indirect`."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from analytics.breakdown_cells import BreakdownCellEngine, BreakdownRowEngine, Plan
from analytics.breakdowns import BREAKDOWNS
from analytics.indicators import INDICATORS, Indirect
from analytics.stats.cells import CellIndex
from analytics.stats.estimation import Design

TOLERANCE = 1e-9


class FakeIndicator:
    def __init__(self, kind: str, num: np.ndarray, den: np.ndarray | None = None):
        self.kind, self.num, self.den = kind, num, den

    def values(self, columns):  # type: ignore[no-untyped-def]
        return self.num, self.den if self.den is not None else np.ones_like(self.num)


def sample(seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    n, n_regions = 3000, 5
    stratum = rng.integers(0, 8, n)
    psu = rng.integers(0, 12, n)
    stratum[:4], psu[:4] = 99, 0  # a lonely PSU
    region = (stratum % n_regions) + 100
    straddle = rng.random(n) < 0.05  # some PSUs hold interviews of two regions
    region = np.where(straddle, (region - 100 + 1) % n_regions + 100, region)
    region[rng.random(n) < 0.01] = 999  # a region outside the geography
    weight = rng.gamma(2.0, 50.0, n)
    columns = {
        "weight": weight,
        "stratum": stratum.astype(float),
        "psu": psu.astype(float),
        "region_id": region.astype(float),
    }
    regions = [SimpleNamespace(pk=100 + i) for i in range(n_regions)]
    lookup = {100 + i: i for i in range(n_regions)}
    region_codes = np.array([lookup.get(int(r), -1) for r in region], dtype=np.int64)
    plans = []
    for b in BREAKDOWNS[:4]:
        k = len(b.groups)
        groups = rng.integers(-1, k, n)  # -1: in no group
        plans.append(Plan(b, regions, "KZ2022", groups.astype(np.int64), region_codes))
    binary = (rng.random(n) < 0.3).astype(float)
    binary[rng.random(n) < 0.1] = np.nan
    rare = (rng.random(n) < 0.02).astype(float)
    score = rng.poisson(3.0, n).astype(float)
    score[rng.random(n) < 0.2] = np.nan
    amount = rng.exponential(10.0, n)
    households = rng.integers(1, 6, n).astype(float)
    households[rng.random(n) < 0.05] = np.nan
    complete = (rng.random(n) < 0.4).astype(float)
    indicators = [
        FakeIndicator("proportion", binary),
        FakeIndicator("proportion", rare),
        FakeIndicator("proportion", complete),
        FakeIndicator("ratio", amount, np.where(np.isnan(households), 2.0, households)),
        FakeIndicator("mean", score),
        FakeIndicator("ratio", amount, households),
    ]
    return columns, plans, indicators


# With unanswered items the two paths count a domain's df over different PSUs (the cells
# over PSUs holding a valid answer, the rows over PSUs holding any interview), so df and
# the intervals built on it are compared only for fully answered items; and the rows count
# a numerator whose denominator is missing, the cells do not.
DF_FIELDS = {"df", "ci_low", "ci_high"}


def assert_close(fast: dict, slow: dict, where: str, *, skip: set[str] = frozenset()) -> None:
    for name, expected in slow.items():
        if name not in fast or name in skip:
            continue
        got = np.asarray(fast[name], dtype=float)
        expected = np.asarray(expected, dtype=float)
        assert got.shape == expected.shape, (where, name)
        both_nan = np.isnan(got) & np.isnan(expected)
        scale = np.maximum(np.abs(expected), 1.0)
        worst = np.where(both_nan, 0.0, np.abs(got - expected) / scale)
        assert np.all(np.isnan(got) == np.isnan(expected)), (where, name)
        assert np.nanmax(worst, initial=0.0) < TOLERANCE, (where, name, np.nanmax(worst))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cell_path_equals_row_path(seed):
    columns, plans, indicators = sample(seed)
    index = CellIndex()
    index.add_rows(columns["stratum"], columns["psu"], columns["region_id"])
    fast = BreakdownCellEngine(index, columns, plans)
    design = Design(columns["weight"], strata=columns["stratum"], psu=columns["psu"])
    slow = BreakdownRowEngine(design, columns, plans)
    compared = 0
    for i, indicator in enumerate(indicators):
        pairs = zip(fast.indicator(indicator), slow.indicator(indicator), strict=True)
        for p, (f, s) in enumerate(pairs):
            for part, (a, b) in enumerate(zip(f, s, strict=True)):
                num, den = indicator.values(columns)
                skip = DF_FIELDS if np.isnan(num).any() or np.isnan(den).any() else set()
                if np.isnan(den).any():  # the rows count numerators whatever the denominator
                    skip = skip | {"n_num"}
                assert_close(a, b, f"indicator {i}, plan {p}, part {part}", skip=skip)
                compared += 1
    assert compared == len(indicators) * len(plans) * 3


def with_indirect_answers(columns: dict, seed: int) -> dict:
    """The instrument's indirect items, with refusals and interviews outside an arm."""
    rng = np.random.default_rng(seed + 100)
    n = len(columns["weight"])

    def answers(values: list[int], missing: int, share: float) -> np.ndarray:
        drawn = rng.choice(values, n).astype(float)
        return np.where(rng.random(n) < share, missing, drawn)

    return columns | {
        "LE_ARM": answers([0, 1], -9, 0.03),
        "LE_C": answers([0, 1, 2, 3], -2, 0.04),
        "LE_T": answers([0, 1, 2, 3, 4], -2, 0.04),
        "RR_E1": answers([1, 2], -2, 0.05),
        "CW_E1": answers([1, 2], -1, 0.05),
        "E1": answers([1, 2, 3], -2, 0.05),
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_indirect_designs_on_the_cells_equal_the_row_path(seed):
    """List experiment, forced response, crosswise and their gaps by every breakdown: the
    contrasts from cell sums equal `stats.indirect` on the rows (df and counts too)."""
    columns, plans, _ = sample(seed)
    columns = with_indirect_answers(columns, seed)
    index = CellIndex()
    index.add_rows(columns["stratum"], columns["psu"], columns["region_id"])
    fast = BreakdownCellEngine(index, columns, plans)
    design = Design(columns["weight"], strata=columns["stratum"], psu=columns["psu"])
    slow = BreakdownRowEngine(design, columns, plans)
    indirect = [i for i in INDICATORS if isinstance(i, Indirect)]
    assert len(indirect) == 6
    together = fast.indicators(indirect)
    published = 0
    for indicator in indirect:
        both = zip(together[indicator.code], slow.indicator(indicator), strict=True)
        for p, (f, s) in enumerate(both):
            for part, (a, b) in enumerate(zip(f, s, strict=True)):
                assert set(a) == set(b)
                assert_close(a, b, f"{indicator.code}, plan {p}, part {part}")
            published += int(np.isfinite(f[0]["se"]).sum())
    assert published > 50
