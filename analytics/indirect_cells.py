"""The indirect designs' cells for the computation: nation, every domain, domain vs rest.

An indirect estimate (list experiment, forced response, crosswise, or its gap with the direct
question) is a contrast of domain means (`analytics.stats.indirect.contrast`), linearised on
the full design with the wave's weights and their calibration, so it cannot come from the
per-cell sums of the ratio indicators. This engine gives the same statistics as the other
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

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from scipy import stats as scipy_stats

from analytics.indicators import Indirect
from analytics.stats.estimation import CalibrationInfo, Design, t_quantile
from analytics.stats.indirect import Term, contrast

Stats = dict[str, np.ndarray]
KEYS = ("estimate", "se", "ci_low", "ci_high", "n", "n_eff", "df", "deff", "n_num")


class _Domains(Protocol):
    """A set of domains, as `analytics.computation.DomainSet` holds them."""

    @property
    def codes(self) -> np.ndarray: ...

    @property
    def regions(self) -> Sequence[Any]: ...


class IndirectEngine:
    def __init__(
        self,
        weight: np.ndarray,
        calibration: CalibrationInfo | None,
        cols: dict[str, np.ndarray],
        sets: Sequence[_Domains],
    ) -> None:
        self.design = Design(
            weight, strata=cols["stratum"], psu=cols["psu"], calibration=calibration
        )
        self.weight = np.asarray(weight, dtype=float)
        self.cols, self.sets = cols, sets
        _, self.psu_key = np.unique(
            np.char.add(np.char.add(cols["stratum"].astype(str), "\x1f"), cols["psu"].astype(str)),
            return_inverse=True,
        )
        _, self.stratum_key = np.unique(cols["stratum"].astype(str), return_inverse=True)

    def indicator(self, indicator: Indirect) -> tuple[Stats, list[tuple[Stats, Stats]]]:
        national = self._stack([self._cell(indicator, None)])
        out = []
        for domains in self.sets:
            k = len(domains.regions)
            cells, versus = [], []
            for g in range(k):
                inside = domains.codes == g
                cells.append(self._cell(indicator, inside))
                versus.append(self._versus(indicator, inside))
            out.append((self._stack(cells), self._stack(versus, ("estimate", "se", "p_value"))))
        return national, out

    def _cell(self, indicator: Indirect, domain: np.ndarray | None) -> dict[str, float]:
        terms, constant = indicator.terms(self.cols, domain)
        result = contrast(self.design, terms, constant=constant)
        counted = _counted(terms, self.weight)
        n = int(counted.sum())
        if n == 0 or not np.isfinite(result["estimate"]):
            return dict.fromkeys(KEYS, np.nan) | {"n": 0.0, "n_num": 0.0}
        df = float(
            len(np.unique(self.psu_key[counted])) - len(np.unique(self.stratum_key[counted]))
        )
        half = float(t_quantile(0.95, df)) * result["se"] if df > 0 else np.nan
        srs = _srs_variance(terms, self.weight)
        deff = result["se"] ** 2 / srs if srs > 0 else np.nan
        return {
            "estimate": result["estimate"],
            "se": result["se"],
            "ci_low": result["estimate"] - half,
            "ci_high": result["estimate"] + half,
            "n": float(n),
            "n_eff": n / deff if deff and np.isfinite(deff) and deff > 0 else np.nan,
            "df": df,
            "deff": deff,
            "n_num": float(n),
        }

    def _versus(self, indicator: Indirect, inside: np.ndarray) -> dict[str, float]:
        mine, _ = indicator.terms(self.cols, inside)
        rest, _ = indicator.terms(self.cols, ~inside)
        result = contrast(
            self.design, [*mine, *(Term(-t.coefficient, t.values, t.rows) for t in rest)]
        )
        se, df = result["se"], result["df"]
        p = (
            float(2 * scipy_stats.t.sf(abs(result["estimate"]) / se, df))
            if se > 0 and df > 0 and np.isfinite(result["estimate"])
            else np.nan
        )
        return {"estimate": result["estimate"], "se": se, "p_value": p}

    @staticmethod
    def _stack(cells: list[dict[str, float]], keys: Sequence[str] = KEYS) -> Stats:
        return {key: np.array([float(c[key]) for c in cells]) for key in keys}


def _counted(terms: list[Term], weight: np.ndarray) -> np.ndarray:
    counted = np.zeros(weight.shape[0], dtype=bool)
    for term in terms:
        counted |= np.asarray(term.rows, dtype=bool) & ~np.isnan(term.values) & (weight > 0)
    return counted


def _srs_variance(terms: list[Term], weight: np.ndarray) -> float:
    """Variance of the same contrast under simple random sampling of the same sizes."""
    total = 0.0
    for term in terms:
        rows = np.asarray(term.rows, dtype=bool) & ~np.isnan(term.values) & (weight > 0)
        n = int(rows.sum())
        if n < 2:
            return np.nan
        y, w = term.values[rows], weight[rows]
        mean = float((w * y).sum() / w.sum())
        variance = float((w * (y - mean) ** 2).sum() / w.sum()) * n / (n - 1)
        total += term.coefficient**2 * variance / n
    return total
