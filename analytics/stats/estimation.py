"""Design-based estimation for complex survey samples.

Means, proportions and ratios with Taylor-linearisation standard errors, following the
defaults of R's ``survey`` package so that results can be checked against it:

* with-replacement "ultimate cluster" variance: influence values are summed to PSU totals
  within strata and ``V = sum_h n_h / (n_h - 1) * sum_c (t_hc - mean_h)^2``;
* domains (regions, subgroups) use the full design with influence values set to zero
  outside the domain, never a subset of the data, so every PSU of the design still counts;
* missing values of ``y`` (NaN) are dropped from the estimate but not from the design,
  exactly as ``svymean(..., na.rm=TRUE)`` on the full design;
* design degrees of freedom are ``#PSU - #strata`` (R's ``degf``);
* after calibration (post-stratification or raking) the influence values are replaced by
  calibration residuals the way ``svyrecvar`` does it, see :class:`CalibrationInfo`.

Everything here is plain numpy/pandas so it can be tested against reference values and
reused from a notebook. :class:`Design` is the fast path: factorise the design once per
wave, then estimate many indicators for all domains, each in a few ``bincount`` passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse, stats

LonelyPSU = Literal["adjust", "certainty", "fail"]
CIMethod = Literal["logit", "korn-graubard", "wald"]
DfMethod = Literal["design", "domain"]

_LONELY_POLICIES = ("adjust", "certainty", "fail")
_CI_METHODS = ("logit", "korn-graubard", "wald")
_DF_METHODS = ("design", "domain")

# R's svyrecvar backfits the raking margins a fixed number of times; we do the same so
# that standard errors after raking agree with R to rounding error.
RAKING_BACKFIT_ITERATIONS = 10


@dataclass(frozen=True)
class CalibrationInfo:
    """Which calibration produced the design weights, for calibration-aware variances.

    ``kind`` is ``"poststratify"`` (one set of cells) or ``"rake"`` (several margins).
    ``cells`` holds one integer code array per margin (a single array for
    post-stratification), one code per row, aligned with the design's rows.

    The weights given to :class:`Design` must be the calibrated weights. Variances then
    follow R's ``svyrecvar``:

    * post-stratification: ``z_i - w_i * sum_g(z) / sum_g(w)`` within cell ``g``
      (the residual of regressing the influence values on the cell indicators);
    * raking: ``RAKING_BACKFIT_ITERATIONS`` sweeps over the margins, each replacing
      ``z`` by ``z_i - w_i * mean_{j in g}(z_j / w_j)`` (an unweighted mean over the
      margin cell), as R does for designs returned by ``rake()``.

    Build it with :func:`analytics.stats.weighting.poststratification_info` /
    :func:`analytics.stats.weighting.raking_info`, or directly from code arrays.
    """

    kind: Literal["poststratify", "rake"]
    cells: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if self.kind not in ("poststratify", "rake"):
            raise ValueError(f"unknown calibration kind {self.kind!r}")
        if self.kind == "poststratify" and len(self.cells) != 1:
            raise ValueError("post-stratification takes exactly one cell code array")
        if not self.cells:
            raise ValueError("calibration needs at least one margin")


@dataclass(frozen=True)
class _Margin:
    codes: np.ndarray  # cell code per row, 0..n_cells-1
    n_cells: int
    psu_weight: sparse.csr_matrix  # (n_psu, n_cells): sum of weights of PSU rows in cell
    counts: np.ndarray  # rows per cell


def _factorize(values: np.ndarray | pd.Series, what: str) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(pd.Series(values), sort=True, use_na_sentinel=True)
    if (codes < 0).any():
        raise ValueError(f"{what} has missing values")
    return codes.astype(np.int64), np.asarray(uniques)


def t_quantile(level: float, df: np.ndarray | float) -> np.ndarray:
    """The t quantile of a two-sided interval at confidence ``level`` (NaN where df <= 0)."""
    df = np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(df > 0, stats.t.ppf(0.5 + level / 2, np.where(df > 0, df, 1)), np.nan)


class Design:
    """A stratified, clustered sample design, factorised once for repeated estimation.

    Parameters
    ----------
    weight:
        Final (possibly calibrated) weights, one per row; non-negative.
    strata, psu:
        Stratum and PSU identifiers per row. ``strata=None`` is one stratum;
        ``psu=None`` makes every row its own PSU. PSU ids are taken as unique within
        strata (PSU 1 of stratum A and PSU 1 of stratum B are different PSUs).
    lonely_psu:
        Policy for a stratum with a single PSU, where the within-stratum variance is
        undefined:

        * ``"adjust"`` (default): as R ``options(survey.lonely.psu="adjust")``: the PSU
          total is centred at the grand mean, which is zero for linearised values, so
          it contributes ``t_hc^2``; conservative.
        * ``"certainty"``: treat the PSU as selected with certainty: contributes 0.
        * ``"fail"``: raise ``ValueError`` naming the stratum.

        A stratum with several PSUs of which only one has rows in a domain is not
        lonely: the other PSUs count with zero totals (R's default behaviour).
    calibration:
        How the weights were calibrated, so standard errors account for it; see
        :class:`CalibrationInfo`. ``None`` treats the weights as sampling weights.
    """

    def __init__(
        self,
        weight: np.ndarray | pd.Series,
        *,
        strata: np.ndarray | pd.Series | None = None,
        psu: np.ndarray | pd.Series | None = None,
        lonely_psu: LonelyPSU = "adjust",
        calibration: CalibrationInfo | None = None,
    ) -> None:
        if lonely_psu not in _LONELY_POLICIES:
            raise ValueError(f"lonely_psu must be one of {_LONELY_POLICIES}, got {lonely_psu!r}")
        w = np.asarray(weight, dtype=float)
        if w.ndim != 1:
            raise ValueError("weight must be one-dimensional")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("weights must be finite and non-negative")
        n = w.shape[0]
        self.weight = w
        self.n_rows = n
        self.lonely_psu = lonely_psu

        if strata is None:
            h = np.zeros(n, dtype=np.int64)
            self.strata_labels = np.array([0])
        else:
            if len(strata) != n:
                raise ValueError("strata and weight differ in length")
            h, self.strata_labels = _factorize(strata, "strata")
        if psu is None:
            p = np.arange(n, dtype=np.int64)
            n_p = max(n, 1)
        else:
            if len(psu) != n:
                raise ValueError("psu and weight differ in length")
            p, psu_uniques = _factorize(psu, "psu")
            n_p = len(psu_uniques)
        # PSU codes sorted by stratum, so strata are contiguous blocks of PSU codes.
        combined = h * n_p + p
        keys, psu_code = np.unique(combined, return_inverse=True)
        self.psu_code = psu_code.astype(np.int64)
        self.n_psu = len(keys)
        self.psu_stratum = (keys // n_p).astype(np.int64)
        self.n_strata = len(self.strata_labels)
        self.psu_per_stratum = np.bincount(self.psu_stratum, minlength=self.n_strata)
        self._stratum_start = np.concatenate(([0], np.cumsum(self.psu_per_stratum)[:-1]))
        self._stratum_of_row = h

        lonely = np.flatnonzero(self.psu_per_stratum == 1)
        if lonely.size and lonely_psu == "fail":
            names = ", ".join(str(s) for s in self.strata_labels[lonely][:10])
            raise ValueError(f"stratum {names} has only one PSU (lonely_psu='fail')")
        nh = self.psu_per_stratum.astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(nh > 1, nh / (nh - 1), 0.0)
        if lonely_psu == "adjust":
            scale = np.where(nh == 1, 1.0, scale)
        self._stratum_scale = scale
        self._lonely = nh == 1

        positive_psu = np.bincount(self.psu_code, weights=(w > 0), minlength=self.n_psu) > 0
        self.df = int(positive_psu.sum() - np.unique(self.psu_stratum[positive_psu]).size)

        self.calibration = calibration
        self._margins: list[_Margin] = []
        if calibration is not None:
            if (w <= 0).any():
                raise ValueError("calibrated weights must be positive")
            for codes in calibration.cells:
                codes = np.asarray(codes)
                if codes.shape != (n,):
                    raise ValueError("calibration cell codes must have one code per row")
                c, uniq = _factorize(codes, "calibration cells")
                g = len(uniq)
                psu_w = sparse.csr_matrix((w, (self.psu_code, c)), shape=(self.n_psu, g))
                self._margins.append(_Margin(c, g, psu_w, np.bincount(c, minlength=g)))
            if calibration.kind == "rake":
                # Cross-tabulated row counts between margins, for backfitting on cells.
                self._cross = [
                    [
                        sparse.csr_matrix(
                            (np.ones(n), (a.codes, b.codes)), shape=(a.n_cells, b.n_cells)
                        )
                        for b in self._margins
                    ]
                    for a in self._margins
                ]

    # ------------------------------------------------------------------ variance core

    def _psu_totals(self, z: np.ndarray, est_code: np.ndarray, k: int) -> np.ndarray:
        """PSU totals of influence values ``z`` for ``k`` estimates, shape ``(k, n_psu)``.

        Each row contributes to at most one estimate (``est_code`` in ``0..k-1``, ``-1``
        for none), which keeps this to a single ``bincount`` even for many domains.
        When the weights are calibrated, the totals of the calibration residuals are
        formed at cell level (no ``k x n`` matrix is ever built).
        """
        inside = est_code >= 0
        idx = np.where(inside, est_code, k) * self.n_psu + self.psu_code
        totals = np.bincount(idx, weights=np.where(inside, z, 0.0), minlength=(k + 1) * self.n_psu)
        totals = totals.reshape(k + 1, self.n_psu)[:k]
        if self.calibration is None:
            return totals
        if self.calibration.kind == "poststratify":
            (m,) = self._margins
            cell_z = np.bincount(
                np.where(inside, est_code, k) * m.n_cells + m.codes,
                weights=np.where(inside, z, 0.0),
                minlength=(k + 1) * m.n_cells,
            ).reshape(k + 1, m.n_cells)[:k]
            cell_w = np.bincount(m.codes, weights=self.weight, minlength=m.n_cells)
            means = cell_z / cell_w  # (k, cells)
            return totals - (m.psu_weight @ means.T).T
        # Raking: x <- x - w * ave(x / w, margin), repeated; tracked as cell offsets a_m
        # with u = z / w - sum_m a_m[g_m(i)].
        u = np.where(inside, z / self.weight, 0.0)
        base = []
        for m in self._margins:
            base.append(
                np.bincount(
                    np.where(inside, est_code, k) * m.n_cells + m.codes,
                    weights=u,
                    minlength=(k + 1) * m.n_cells,
                ).reshape(k + 1, m.n_cells)[:k]
            )
        offsets = [np.zeros((k, m.n_cells)) for m in self._margins]
        for _ in range(RAKING_BACKFIT_ITERATIONS):
            for i, m in enumerate(self._margins):
                cell_sum = base[i].copy()
                for j in range(len(self._margins)):
                    cell_sum -= (self._cross[i][j] @ offsets[j].T).T
                offsets[i] += cell_sum / m.counts
        for m, a in zip(self._margins, offsets, strict=True):
            totals = totals - (m.psu_weight @ a.T).T
        return totals

    def _variance(self, totals: np.ndarray) -> np.ndarray:
        """With-replacement stratified variance of each row of PSU totals ``(k, n_psu)``."""
        starts = self._stratum_start
        nh = self.psu_per_stratum
        sums = np.add.reduceat(totals, starts, axis=1)
        means = sums / nh
        # A lonely PSU under "adjust" is centred at the grand mean (zero), as in R.
        means[:, self._lonely] = 0.0
        dev = totals - means[:, self.psu_stratum]
        ss = np.add.reduceat(dev * dev, starts, axis=1)
        return ss @ self._stratum_scale

    def _domain_df(self, est_code: np.ndarray, k: int) -> np.ndarray:
        """#PSU - #strata among PSUs with positive-weight rows in each domain (R's degf
        of a domain subset, which ``svyby(..., svyciprop)`` uses)."""
        inside = (est_code >= 0) & (self.weight > 0)
        idx = np.where(inside, est_code, k) * self.n_psu + self.psu_code
        counts = np.bincount(idx, weights=inside, minlength=(k + 1) * self.n_psu)
        has = counts.reshape(k + 1, self.n_psu)[:k] > 0
        n_psu = has.sum(axis=1)
        n_str = (np.add.reduceat(has.astype(np.int64), self._stratum_start, axis=1) > 0).sum(1)
        return (n_psu - n_str).astype(float)

    def _domains(
        self, domain_codes: np.ndarray | None, n_domains: int | None
    ) -> tuple[np.ndarray, int]:
        if domain_codes is None:
            return np.zeros(self.n_rows, dtype=np.int64), 1
        codes = np.asarray(domain_codes)
        if codes.shape != (self.n_rows,):
            raise ValueError("domain_codes must have one code per row")
        codes = codes.astype(np.int64)
        k = int(codes.max()) + 1 if n_domains is None else int(n_domains)
        if codes.size and codes.max() >= k:
            raise ValueError("domain code outside 0..n_domains-1")
        return np.where(codes < 0, -1, codes), max(k, 0)

    # ------------------------------------------------------------------ estimators

    def mean(
        self,
        y: np.ndarray,
        *,
        domain_codes: np.ndarray | None = None,
        n_domains: int | None = None,
        ci: CIMethod = "logit",
        level: float = 0.95,
        df_method: DfMethod = "design",
    ) -> pd.DataFrame:
        """Weighted mean (a proportion when ``y`` is 0/1) for the whole sample or per domain.

        ``y`` is a float array with NaN for missing. ``domain_codes`` are integers
        ``0..n_domains-1`` (negative: in no domain). Returns one row per domain with
        ``domain`` (the code, only when domains are given), ``estimate``, ``se``,
        ``ci_low``, ``ci_high``, ``df``, ``n``, ``n_eff`` and ``deff``.

        ``n`` counts the rows of the domain with a non-missing ``y`` and a positive
        weight; ``deff`` is the design variance over the variance under simple random
        sampling with replacement of ``n`` (R ``svymean(..., deff="replace")``) and
        ``n_eff = n / deff``.

        ``ci``: ``"logit"`` (R ``svyciprop(method="logit")``), ``"korn-graubard"``
        (R ``svyciprop(method="beta")``) or ``"wald"`` (estimate +- t_df * se). When
        ``y`` is not 0/1 the logit and Korn-Graubard intervals do not apply and the
        Wald interval is returned. ``df_method="design"`` uses the design df for every
        domain; ``"domain"`` uses #PSU - #strata among PSUs that hold the domain.
        """
        y = np.asarray(y, dtype=float)
        if y.shape != (self.n_rows,):
            raise ValueError("y must have one value per row")
        return self.ratio(
            y,
            None,
            domain_codes=domain_codes,
            n_domains=n_domains,
            ci=ci,
            level=level,
            df_method=df_method,
        )

    def ratio(
        self,
        num: np.ndarray,
        den: np.ndarray | None,
        *,
        domain_codes: np.ndarray | None = None,
        n_domains: int | None = None,
        ci: CIMethod = "logit",
        level: float = 0.95,
        df_method: DfMethod = "design",
    ) -> pd.DataFrame:
        """Ratio estimator ``R = sum(w num) / sum(w den)`` per domain.

        Influence values ``z = w (num - R den) / sum(w den)`` within the domain, zero
        outside. Rows where ``num`` or ``den`` is NaN are missing. ``den=None`` is a
        mean (``den = 1``). ``deff`` compares with SRS with replacement of the same size,
        using the residuals ``num - R den`` (R ``svyratio(..., deff="replace")``).
        Logit and Korn-Graubard intervals apply to proportions only (0/1 ``num`` and
        ``den`` all ones); any other ratio gets the Wald interval.
        """
        if ci not in _CI_METHODS:
            raise ValueError(f"ci must be one of {_CI_METHODS}, got {ci!r}")
        if df_method not in _DF_METHODS:
            raise ValueError(f"df_method must be one of {_DF_METHODS}, got {df_method!r}")
        if not 0 < level < 1:
            raise ValueError("level must be between 0 and 1")
        num = np.asarray(num, dtype=float)
        if num.shape != (self.n_rows,):
            raise ValueError("num must have one value per row")
        codes, k = self._domains(domain_codes, n_domains)
        w = self.weight
        if den is None:
            valid = ~np.isnan(num)
            d = np.ones(self.n_rows)
        else:
            d = np.asarray(den, dtype=float)
            if d.shape != (self.n_rows,):
                raise ValueError("den must have one value per row")
            valid = ~(np.isnan(num) | np.isnan(d))
            d = np.where(valid, d, 0.0)
        x = np.where(valid, num, 0.0)
        est_code = np.where(valid, codes, -1)
        bucket = np.where(est_code >= 0, est_code, k)

        tot_x = np.bincount(bucket, weights=w * x, minlength=k + 1)[:k]
        tot_d = np.bincount(bucket, weights=w * d, minlength=k + 1)[:k]
        tot_w = np.bincount(bucket, weights=w, minlength=k + 1)[:k]
        n = np.bincount(bucket, weights=(w != 0), minlength=k + 1)[:k]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = tot_x / tot_d
            r_ext = np.append(np.nan_to_num(r), 0.0)
            d_ext = np.append(np.where(tot_d != 0, tot_d, 1.0), 1.0)
            resid = x - r_ext[bucket] * d
            z = w * resid / d_ext[bucket]
            totals = self._psu_totals(z, est_code, k)
            var = self._variance(totals)
            # Rounding residue where the true variance is zero (a domain inside one
            # PSU, a calibrated total) would otherwise give an absurd effective n.
            var = np.where(var < (1e-12 * np.abs(np.nan_to_num(r))) ** 2, 0.0, var)
            se = np.sqrt(var)
            # SRS-with-replacement variance of the same estimator: residuals scaled to
            # the mean denominator, variance with the n/(n-1) factor, divided by n.
            dbar = tot_d / tot_w
            ss = np.bincount(bucket, weights=w * resid * resid, minlength=k + 1)[:k]
            v_srs = ss / tot_w / dbar**2 / (n - 1)
            deff = var / v_srs
            # zero design variance: fall back to the actual n, as the KG interval does
            n_eff = np.where(deff == 0, n, n / deff)
        se = np.where(np.isfinite(r), se, np.nan)

        df = np.full(k, float(self.df)) if df_method == "design" else self._domain_df(codes, k)
        is_binary = bool(np.isin(x[valid], (0.0, 1.0)).all()) and (
            den is None or bool(np.isin(d[valid], (1.0,)).all())
        )
        low, high = intervals(r, se, df, n, ci if is_binary else "wald", level)

        out = pd.DataFrame(
            {
                "estimate": r,
                "se": se,
                "ci_low": low,
                "ci_high": high,
                "df": df,
                "n": n.astype(np.int64),
                "n_eff": n_eff,
                "deff": deff,
            }
        )
        if domain_codes is not None:
            out.insert(0, "domain", np.arange(k))
        return out

    def domain_difference(
        self,
        y: np.ndarray,
        *,
        domain_codes: np.ndarray,
        a: int,
        b: int | None = None,
        den: np.ndarray | None = None,
        level: float = 0.95,
    ) -> dict[str, float]:
        """Difference of the domain-``a`` and domain-``b`` estimates (means, or ratios
        with ``den``), with the SE from the joint linearisation (covariance included).

        ``b=None`` compares ``a`` with every row not in ``a`` (region vs rest of country).
        Returns ``estimate``, ``se``, ``df``, ``t``, ``p_value`` (two-sided, t with the
        design df), ``ci_low``, ``ci_high``, ``estimate_a``, ``estimate_b``.
        """
        codes = np.asarray(domain_codes).astype(np.int64)
        if codes.shape != (self.n_rows,):
            raise ValueError("domain_codes must have one code per row")
        in_a = codes == a
        in_b = ~in_a if b is None else codes == b
        if b is not None and b == a:
            raise ValueError("a and b must differ")
        pair = np.where(in_a, 0, np.where(in_b, 1, -1))
        num = np.asarray(y, dtype=float)
        w = self.weight
        if den is None:
            valid = ~np.isnan(num)
            d = np.ones(self.n_rows)
        else:
            d = np.asarray(den, dtype=float)
            valid = ~(np.isnan(num) | np.isnan(d))
            d = np.where(valid, d, 0.0)
        x = np.where(valid, num, 0.0)
        pair = np.where(valid, pair, -1)
        bucket = np.where(pair >= 0, pair, 2)
        tot_x = np.bincount(bucket, weights=w * x, minlength=3)[:2]
        tot_d = np.bincount(bucket, weights=w * d, minlength=3)[:2]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = tot_x / tot_d
            sign = np.array([1.0, -1.0, 0.0])
            r_ext = np.append(np.nan_to_num(r), 0.0)
            d_ext = np.append(np.where(tot_d != 0, tot_d, 1.0), 1.0)
            # z_a - z_b: each row is in at most one of the two domains.
            z = sign[bucket] * w * (x - r_ext[bucket] * d) / d_ext[bucket]
            est_code = np.where(pair >= 0, 0, -1)
            var = self._variance(self._psu_totals(z, est_code, 1))[0]
        diff = float(r[0] - r[1])
        se = float(np.sqrt(var))
        df = float(self.df)
        return _test_result(diff, se, df, level) | {
            "estimate_a": float(r[0]),
            "estimate_b": float(r[1]),
        }

    def domains_vs_rest(
        self,
        y: np.ndarray,
        *,
        domain_codes: np.ndarray,
        n_domains: int,
        den: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Every domain against the rest of the sample at once: for each domain ``g``
        the result of ``domain_difference(y, domain_codes=..., a=g, b=None, den=den)``.

        The influence values of "``g`` minus the rest" are linear in three vectors (the
        domain's own residuals, ``w num`` and ``w den`` over all valid rows), so their
        PSU totals, calibration residuals included, are formed from three passes over
        the data instead of one pass per domain. Returns one row per domain with
        ``domain``, ``estimate``, ``se``, ``df``, ``t``, ``p_value``, ``estimate_a``,
        ``estimate_b``.
        """
        codes, k = self._domains(domain_codes, n_domains)
        num = np.asarray(y, dtype=float)
        if num.shape != (self.n_rows,):
            raise ValueError("y must have one value per row")
        if den is None:
            valid = ~np.isnan(num)
            d = np.ones(self.n_rows)
        else:
            d = np.asarray(den, dtype=float)
            valid = ~(np.isnan(num) | np.isnan(d))
        w = self.weight
        u = np.where(valid, w * np.where(valid, num, 0.0), 0.0)
        v = np.where(valid, w * np.where(valid, d, 0.0), 0.0)
        in_dom = valid & (codes >= 0)
        r_a, r_b, rest_v, q = vs_rest_linearisation(u, v, in_dom, np.where(in_dom, codes, k), k)
        with np.errstate(divide="ignore", invalid="ignore"):
            own = self._psu_totals(q, np.where(in_dom, codes, -1), k)
            every = np.where(valid, 0, -1)
            t_u = self._psu_totals(u, every, 1)[0]
            t_v = self._psu_totals(v, every, 1)[0]
            scale_b = np.where(rest_v != 0, rest_v, np.nan)
            totals = own - np.outer(1 / scale_b, t_u) + np.outer(r_b / scale_b, t_v)
            var = self._variance(np.nan_to_num(totals))
            diff = r_a - r_b
            se = np.where(np.isfinite(diff), np.sqrt(var), np.nan)
            t = np.where(se > 0, diff / se, np.nan)
        df = float(self.df)
        p_value = 2 * stats.t.sf(np.abs(t), df) if df > 0 else np.full(k, np.nan)
        return pd.DataFrame(
            {
                "domain": np.arange(k),
                "estimate": diff,
                "se": se,
                "df": df,
                "t": t,
                "p_value": p_value,
                "estimate_a": r_a,
                "estimate_b": r_b,
            }
        )


def vs_rest_linearisation(
    u: np.ndarray, v: np.ndarray, in_domain: np.ndarray, bucket: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each domain's ratio against the rest of the population, linearised jointly.

    `u`, `v` are weighted numerator and denominator values (of rows, or of cells holding
    sums of rows), `bucket` the domain of each (k outside every domain). Returns the
    domain ratios R_g, the ratios of the rest R_rest, the rest's denominators D_rest and
    q = [i in g] ((u - R_g v)/D_g + (u - R_rest v)/D_rest); the influence value of the
    difference is z_g = q - (u - R_rest v)/D_rest, whose last term the caller adds per PSU.
    """
    tot_u = np.bincount(bucket, weights=u, minlength=k + 1)[:k]
    tot_v = np.bincount(bucket, weights=v, minlength=k + 1)[:k]
    all_u, all_v = u.sum(), v.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        r_a = tot_u / tot_v
        rest_v = all_v - tot_v
        r_b = (all_u - tot_u) / rest_v
        ra = np.append(np.nan_to_num(r_a), 0.0)[bucket]
        rb = np.append(np.nan_to_num(r_b), 0.0)[bucket]
        da = np.append(np.where(tot_v != 0, tot_v, 1.0), 1.0)[bucket]
        db = np.append(np.where(rest_v != 0, rest_v, 1.0), 1.0)[bucket]
        q = np.where(in_domain, (u - ra * v) / da + (u - rb * v) / db, 0.0)
    return r_a, r_b, rest_v, q


def intervals(
    p: np.ndarray, se: np.ndarray, df: np.ndarray, n: np.ndarray, ci: str, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence interval bounds of estimates ``p`` with standard errors ``se``, design
    degrees of freedom ``df`` and sample sizes ``n``, by method ``ci`` ("wald", "logit" or
    "korn-graubard"), at confidence ``level``. Vectorised; shared with `cells`."""
    alpha = 1 - level
    t = t_quantile(level, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        if ci == "wald":
            return p - t * se, p + t * se
        if ci == "logit":
            eta = np.log(p / (1 - p))
            half = t * se / (p * (1 - p))
            low = 1 / (1 + np.exp(-(eta - half)))
            high = 1 / (1 + np.exp(-(eta + half)))
            # At p = 0 or 1 the logit interval is undefined: report Korn-Graubard there.
            edge = (p == 0) | (p == 1)
            if edge.any():
                kg_low, kg_high = intervals(p, se, df, n, "korn-graubard", level)
                low = np.where(edge, kg_low, low)
                high = np.where(edge, kg_high, high)
            return low, high
        # Korn-Graubard as R svyciprop(method="beta"): effective n = p(1-p)/se^2,
        # scaled by (t_{n-1} / t_df)^2, then Clopper-Pearson with x = n_eff * p.
        n_eff = p * (1 - p) / se**2
        # No variance (p = 0 or 1): fall back to the unweighted n (NCHS).
        n_eff = np.where((se == 0) | ~np.isfinite(n_eff), n, n_eff)
        adj = t_quantile(level, n - 1) / t
        n_eff = n_eff * adj**2
        x = n_eff * p
        low = np.where(p > 0, stats.beta.ppf(alpha / 2, x, n_eff - x + 1), 0.0)
        high = np.where(p < 1, stats.beta.ppf(1 - alpha / 2, x + 1, n_eff - x), 1.0)
        bad = ~np.isfinite(p)
        return np.where(bad, np.nan, low), np.where(bad, np.nan, high)


def _test_result(diff: float, se: float, df: float | None, level: float) -> dict[str, float]:
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = diff / se if se > 0 else np.nan
    if df is None:
        p_value = float(2 * stats.norm.sf(abs(stat)))
        q = float(stats.norm.ppf(0.5 + level / 2))
    else:
        p_value = float(2 * stats.t.sf(abs(stat), df)) if df > 0 else np.nan
        q = float(t_quantile(level, df))
    return {
        "estimate": diff,
        "se": se,
        "df": np.nan if df is None else df,
        "t": float(stat),
        "p_value": p_value,
        "ci_low": diff - q * se,
        "ci_high": diff + q * se,
    }


# ---------------------------------------------------------------------- DataFrame API


def _design_from_frame(
    frame: pd.DataFrame,
    weight: str,
    strata: str | None,
    psu: str | None,
    lonely_psu: LonelyPSU,
    calibration: CalibrationInfo | None,
) -> Design:
    return Design(
        frame[weight].to_numpy(dtype=float),
        strata=None if strata is None else frame[strata].to_numpy(),
        psu=None if psu is None else frame[psu].to_numpy(),
        lonely_psu=lonely_psu,
        calibration=calibration,
    )


def survey_mean(
    frame: pd.DataFrame,
    y: str,
    *,
    weight: str,
    strata: str | None = None,
    psu: str | None = None,
    domain: str | None = None,
    ci: CIMethod = "logit",
    level: float = 0.95,
    lonely_psu: LonelyPSU = "adjust",
    calibration: CalibrationInfo | None = None,
    df_method: DfMethod = "design",
) -> pd.DataFrame:
    """Design-based mean or proportion of column ``y``, overall or per value of ``domain``.

    A thin wrapper over :class:`Design` (see there and :meth:`Design.mean` for the
    variance, lonely-PSU policy, intervals and calibration). Rows are sorted by domain
    value; rows whose domain is missing belong to no domain but stay in the design.
    """
    design = _design_from_frame(frame, weight, strata, psu, lonely_psu, calibration)
    values = pd.to_numeric(frame[y], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if domain is None:
        return design.mean(values, ci=ci, level=level, df_method=df_method)
    codes, labels = pd.factorize(frame[domain], sort=True, use_na_sentinel=True)
    out = design.mean(
        values,
        domain_codes=codes,
        n_domains=len(labels),
        ci=ci,
        level=level,
        df_method=df_method,
    )
    out["domain"] = np.asarray(labels)
    return out


def domain_difference(
    frame: pd.DataFrame,
    y: str,
    *,
    weight: str,
    strata: str | None = None,
    psu: str | None = None,
    domain: str,
    a: object,
    b: object | None = None,
    level: float = 0.95,
    lonely_psu: LonelyPSU = "adjust",
    calibration: CalibrationInfo | None = None,
) -> dict[str, float]:
    """Estimate of domain ``a`` minus domain ``b`` (``b=None``: all rows not in ``a``).

    The SE comes from the joint linearisation of both estimates on the same design, so
    their covariance is included (R ``svyby(..., covmat=TRUE)`` + ``svycontrast``).
    Returns ``estimate``, ``se``, ``df``, ``t``, ``p_value``, ``ci_low``, ``ci_high``,
    ``estimate_a``, ``estimate_b``.
    """
    design = _design_from_frame(frame, weight, strata, psu, lonely_psu, calibration)
    values = pd.to_numeric(frame[y], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    col = frame[domain]
    if not (col == a).any():
        raise ValueError(f"no rows with {domain} == {a!r}")
    if b is not None and not (col == b).any():
        raise ValueError(f"no rows with {domain} == {b!r}")
    codes = np.where(col == a, 0, -1)
    if b is not None:
        codes = np.where(col == b, 1, codes)
    return design.domain_difference(
        values, domain_codes=codes, a=0, b=None if b is None else 1, level=level
    )


def independent_difference(
    est_a: float, se_a: float, est_b: float, se_b: float, *, df: float | None = None
) -> dict[str, float]:
    """Difference ``est_a - est_b`` of estimates from independent samples (two waves).

    ``se = sqrt(se_a^2 + se_b^2)``. With ``df=None`` the test is a z test; otherwise a
    t test with ``df`` degrees of freedom (for instance the smaller of the two design
    dfs). Returns ``estimate``, ``se``, ``df``, ``t``, ``p_value``, ``ci_low``,
    ``ci_high`` (95%).
    """
    se = float(np.hypot(se_a, se_b))
    return _test_result(float(est_a) - float(est_b), se, df, 0.95)


def holm_adjust(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values. NaNs stay NaN and do not count as tests."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    vals = p[ok]
    order = np.argsort(vals, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * vals[order]))
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out
