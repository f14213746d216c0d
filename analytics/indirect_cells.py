"""The indirect designs' cells for the computation: nation, every domain, domain vs rest.

An indirect estimate (list experiment, forced response, crosswise, or its gap with the direct
question) is a contrast of domain means (`analytics.stats.indirect.contrast`), linearised on
the full design with the wave's weights and their calibration. Every domain of a set is
estimated at once (`analytics.stats.indirect.domain_contrasts` and `contrasts_vs_rest`):
per-domain sums of weights and weighted answers per term, then the PSU totals of the
influence values by domain in one pass, so an indicator costs a few passes over the rows
whatever the number of domains. With sampling weights, the regional engine's cells
(stratum x PSU x region) carry the terms' sums instead, as for the breakdowns
(`analytics.stats.cell_contrasts`): the means are still summed over the rows, in their
order, so the estimates are the row path's to the bit, and the variances agree with it to
rounding (about 1e-15 relative). This engine gives the same statistics as the other
engines of `analytics.computation`, array by array, so the cells, publication rules,
comparisons and changes between waves follow the one path:

* ``df`` is the domain's own (PSUs minus strata among the PSUs holding the domain's
  answers), as for the other indicators, and the 95% interval is a t interval on it;
* the design effect compares the variance with the simple-random-sampling variance of the
  same contrast (each mean's weighted variance over its unweighted count), and the effective
  n is n over it;
* there is no numerator count for the disclosure rule (no answer says what its respondent
  did): the respondents answering stand for it;
* a domain is compared with the rest of the country by one more contrast (its terms minus
  the rest's), on the design df.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from analytics.indicators import Indirect
from analytics.stats import cell_contrasts
from analytics.stats.cells import CellDesign, CellIndex
from analytics.stats.estimation import CalibrationInfo, Design, t_quantile
from analytics.stats.indirect import Term, contrasts_vs_rest, domain_contrasts

Stats = dict[str, np.ndarray]
KEYS = ("estimate", "se", "ci_low", "ci_high", "n", "n_eff", "df", "deff", "n_num")


class _Domains(Protocol):
    """A set of domains, as `analytics.computation.DomainSet` holds them."""

    @property
    def codes(self) -> np.ndarray: ...

    @property
    def regions(self) -> Sequence[Any]: ...

    def codes_of(self, region_ids: np.ndarray) -> np.ndarray: ...


class IndirectEngine:
    """The nation and every domain of each set, from the rows (with calibrated weights) or,
    given the regional engine's cells (``cells``: sampling weights only), from the terms'
    sums per cell of stratum x PSU x region (`analytics.stats.cell_contrasts`), as the
    breakdowns are estimated: a few passes over the cells instead of the rows per domain
    set. Both give the same statistics; from the cells the sums are formed in another
    order (agreement to rounding, about 1e-15 relative)."""

    def __init__(
        self,
        weight: np.ndarray,
        calibration: CalibrationInfo | None,
        cols: dict[str, np.ndarray],
        sets: Sequence[_Domains],
        *,
        cells: CellIndex | None = None,
    ) -> None:
        self.cols, self.sets = cols, sets
        self.cells: _Cells | None = None
        if cells is not None and calibration is None:
            self.cells = _Cells(weight, cells, sets)
            return
        self.design = Design(
            weight, strata=cols["stratum"], psu=cols["psu"], calibration=calibration
        )
        self.national_codes = np.zeros(self.design.n_rows, np.int64)

    def indicator(self, indicator: Indirect) -> tuple[Stats, list[tuple[Stats, Stats]]]:
        terms, constant = indicator.terms(self.cols, None)
        if self.cells is not None:
            return self.cells.indicator(terms, constant)
        national = self._cells(terms, constant, self.national_codes, 1)
        out = []
        for domains in self.sets:
            k = len(domains.regions)
            codes = np.asarray(domains.codes, dtype=np.int64)
            versus = contrasts_vs_rest(self.design, terms, codes, k)
            out.append(
                (
                    self._cells(terms, constant, codes, k),
                    {key: versus[key] for key in ("estimate", "se", "p_value")},
                )
            )
        return national, out

    def _cells(self, terms: list[Term], constant: float, codes: np.ndarray, k: int) -> Stats:
        return contrast_stats(domain_contrasts(self.design, terms, codes, k, constant=constant))


class _Cells:
    """The indirect contrasts of the nation and each domain set from per-cell term sums;
    a term shared by several indicators (a gap and its design) is summed once."""

    def __init__(self, weight: np.ndarray, index: CellIndex, sets: Sequence[_Domains]) -> None:
        self.index = index
        self.design = CellDesign(index.cell_psu, index.psu_stratum)
        self.table = cell_contrasts.TermTable(weight)
        self.sums: dict[int, tuple[np.ndarray, ...]] = {}
        self.held: dict[frozenset[int], np.ndarray] = {}
        self.totals: dict[tuple[int, int], cell_contrasts.RowTotals] = {}
        national = np.zeros(index.n_cells, np.int64)
        n_rows = len(index.row_cell)
        # per domain set: its number of domains, each row's domain (k: none), its pairs
        self.sets = [(1, np.zeros(n_rows, np.int64), self.design.pairs(national, 1))]
        for domains in sets:
            k = len(domains.regions)
            codes = np.asarray(domains.codes, dtype=np.int64)
            bucket = np.where(codes >= 0, codes, k)
            self.sets.append((k, bucket, self.design.pairs(domains.codes_of(index.cell_region), k)))

    def indicator(
        self, terms: list[Term], constant: float
    ) -> tuple[Stats, list[tuple[Stats, Stats]]]:
        index, design, table = self.index, self.design, self.table
        refs = [(term.coefficient, table.index(term)) for term in terms]
        for _, j in refs:
            if j not in self.sums:
                self.sums[j] = table.cell_sums(j, index.row_cell, index.n_cells)
                # the means as the rows give them (the same sums in the same order)
                for s, (k, bucket, _) in enumerate(self.sets):
                    self.totals[j, s] = table.row_totals(j, bucket, k)
        sums = [cell_contrasts.TermSums(c, *self.sums[j]) for c, j in refs]
        which = frozenset(j for _, j in refs)
        if which not in self.held:
            self.held[which] = np.bincount(
                index.row_cell, weights=table.counted(which), minlength=index.n_cells
            )
        held = self.held[which]
        results = []
        for s, (k, _, pairs) in enumerate(self.sets):
            totals = [self.totals[j, s] for _, j in refs]
            cells = cell_contrasts.contrasts(
                design, sums, held, pairs, k, constant=constant, row_totals=totals
            )
            cells["df"] = design.valid_df(pairs, held, k).df
            versus = None
            if s > 0:
                versus = cell_contrasts.contrasts_vs_rest(design, sums, pairs, k, row_totals=totals)
            results.append((contrast_stats(cells), versus))
        national = results[0][0]
        return national, [(stats, versus) for stats, versus in results[1:]]  # type: ignore[misc]


def contrast_stats(result: dict[str, np.ndarray]) -> Stats:
    """The cells' statistics of ``domain_contrasts`` results (or their cell-sum equivalent,
    ``analytics.stats.cell_contrasts.contrasts``): t intervals on the domain df, design
    effect against the contrast's simple-random-sampling variance, the respondents
    answering as the numerator count."""
    estimate, se, n, df = result["estimate"], result["se"], result["n"], result["df"]
    missing = (n == 0) | ~np.isfinite(estimate)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = np.where(df > 0, t_quantile(0.95, df) * se, np.nan)
        srs = result["srs_variance"]
        deff = np.where(srs > 0, se**2 / srs, np.nan)
        n_eff = np.where(np.isfinite(deff) & (deff > 0), n / deff, np.nan)
    stats = {
        "estimate": estimate,
        "se": se,
        "ci_low": estimate - half,
        "ci_high": estimate + half,
        "n": n,
        "n_eff": n_eff,
        "df": df,
        "deff": deff,
        "n_num": n,
    }
    return {
        key: np.where(missing, 0.0 if key in ("n", "n_num") else np.nan, value).astype(float)
        for key, value in stats.items()
    }


# The estimator's parameters of each design, and the `tanys_design` parameter that sets each.
DECLARED_PARAMETERS = {
    "rr": (("p_truth", "p"), ("p_yes", "q")),
    "crosswise": (("p_unrelated", "r"),),
}


def as_declared(indicator: Indirect, definition: Mapping[str, Any] | None) -> Indirect:
    """The indicator with its design's parameters as the wave's questionnaire declares them.

    The indicator table carries the instrument's values (forced response p 0.7, q 0.2;
    crosswise r 0.25). A questionnaire that declares the same answer row with other values
    (a die gives p = 4/6, q = 1/6) is estimated with its own: the estimator must use the
    probabilities the respondents were given. A form that does not declare the row leaves
    the indicator as it is (and its answers, if any, are then the instrument's)."""
    if indicator.design not in DECLARED_PARAMETERS:
        return indicator
    for design in (definition or {}).get("designs", []):
        if design.get("design") == indicator.design and design.get("answer") == indicator.items[0]:
            parameters = tuple(
                (ours, float(design[theirs]))
                for ours, theirs in DECLARED_PARAMETERS[indicator.design]
            )
            return replace(indicator, parameters=parameters)
    return indicator
