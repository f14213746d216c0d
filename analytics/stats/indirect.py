"""Estimators for indirect questioning designs, with design-based uncertainty.

People under-report bribery when asked directly. Three designs ask so that no single answer
tells what the respondent did, and the prevalence is estimated from the whole sample:

* **List experiment** (item count technique): a random control group counts how many of J
  harmless items apply to them, the treatment group the same J plus the sensitive one.
  Prevalence = mean count of the treatment group - mean count of the control group.
* **Randomised response, forced-response variant**: a private randomiser tells the respondent
  to answer truthfully (probability ``p_truth``), to say "yes" (``p_yes``) or to say "no"
  regardless. With λ the share of "yes": prevalence = (λ - p_yes) / p_truth.
* **Crosswise model**: the respondent says only whether the answers to the sensitive question
  and to an unrelated one of known prevalence ``p`` are the same. With λ the share of "same":
  prevalence = (λ + p - 1) / (2p - 1), defined for p ≠ 1/2.

Each estimate is a linear combination of domain means, so its standard error comes from one
joint Taylor linearisation on the full design (strata, PSUs, calibrated weights), exactly as
R's ``survey`` computes ``svycontrast`` over ``svyby(..., covmat=TRUE)``. The randomiser's own
noise is in the observed answers, so the design's variance inflation is part of that SE. The
**under-reporting gap** (indirect minus the direct question's estimate, over the same domain)
is one more contrast, so its SE includes the covariance of the two estimates.

Estimates outside [0, 1] are possible with these designs in small samples; they are returned
as they are and flagged (``outside_unit_interval``), never clipped.

Plain numpy over a :class:`~analytics.stats.estimation.Design`, no Django.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from analytics.stats.estimation import Design, t_quantile


@dataclass(frozen=True)
class Term:
    """``coefficient`` x the weighted mean of ``values`` over the rows where ``rows`` is True
    (rows with a missing value, NaN, are left out of that mean but not of the design)."""

    coefficient: float
    values: np.ndarray
    rows: np.ndarray


def contrast(
    design: Design, terms: Sequence[Term], *, constant: float = 0.0, level: float = 0.95
) -> dict[str, float]:
    """``constant + sum(coefficient x domain mean)`` with its linearised SE, df and interval.

    Returns ``estimate``, ``se``, ``df`` (the design's), ``ci_low``, ``ci_high`` (t interval),
    ``n`` (rows in any term with a value) and ``outside_unit_interval``.
    """
    w = design.weight
    estimate = float(constant)
    z = np.zeros(design.n_rows)
    counted = np.zeros(design.n_rows, dtype=bool)
    for term in terms:
        y = np.asarray(term.values, dtype=float)
        rows = np.asarray(term.rows, dtype=bool) & ~np.isnan(y) & (w > 0)
        total_w = float(w[rows].sum())
        if total_w == 0:
            return _empty(estimate)
        x = np.where(rows, y, 0.0)
        mean = float((w * x).sum() / total_w)
        estimate += term.coefficient * mean
        z += np.where(rows, term.coefficient * w * (x - mean) / total_w, 0.0)
        counted |= rows
    variance = design._variance(design._psu_totals(z, np.zeros(design.n_rows, np.int64), 1))[0]
    se = float(np.sqrt(max(variance, 0.0)))
    df = float(design.df)
    half = float(t_quantile(level, df)) * se if df > 0 else np.nan
    return {
        "estimate": estimate,
        "se": se,
        "df": df,
        "ci_low": estimate - half,
        "ci_high": estimate + half,
        "n": int(counted.sum()),
        "outside_unit_interval": bool(not 0.0 <= estimate <= 1.0),
    }


def _empty(estimate: float) -> dict[str, float]:
    nan = float("nan")
    return {
        "estimate": nan,
        "se": nan,
        "df": nan,
        "ci_low": nan,
        "ci_high": nan,
        "n": 0,
        "outside_unit_interval": False,
    }


# ---------------------------------------------------------------------- the three designs


def list_experiment_terms(
    count: np.ndarray, treated: np.ndarray, domain: np.ndarray | None = None
) -> tuple[list[Term], float]:
    """Terms of the item-count estimate: treatment mean minus control mean."""
    inside = _inside(domain, count)
    treated = np.asarray(treated, dtype=bool)
    return [Term(1.0, count, inside & treated), Term(-1.0, count, inside & ~treated)], 0.0


def forced_response_terms(
    yes: np.ndarray, *, p_truth: float, p_yes: float, domain: np.ndarray | None = None
) -> tuple[list[Term], float]:
    """Terms of (λ - p_yes) / p_truth, λ the share answering "yes" (1) rather than "no" (0)."""
    if not 0 < p_truth <= 1 or not 0 <= p_yes < 1 or p_truth + p_yes > 1:
        raise ValueError("forced response needs 0 < p_truth <= 1, 0 <= p_yes and a sum <= 1")
    return [Term(1.0 / p_truth, yes, _inside(domain, yes))], -p_yes / p_truth


def crosswise_terms(
    same: np.ndarray, *, p_unrelated: float, domain: np.ndarray | None = None
) -> tuple[list[Term], float]:
    """Terms of (λ + p - 1) / (2p - 1), λ the share answering "same" (1) rather than "different"."""
    if not 0 < p_unrelated < 1 or p_unrelated == 0.5:
        raise ValueError("the crosswise model needs a known prevalence in (0, 1), not 1/2")
    scale = 2 * p_unrelated - 1
    return [Term(1.0 / scale, same, _inside(domain, same))], (p_unrelated - 1) / scale


def with_gap(
    terms: tuple[list[Term], float], direct: np.ndarray, domain: np.ndarray | None = None
) -> tuple[list[Term], float]:
    """The under-reporting gap: the indirect estimate minus the direct question's share."""
    indirect, constant = terms
    return [*indirect, Term(-1.0, direct, _inside(domain, direct))], constant


def _inside(domain: np.ndarray | None, like: np.ndarray) -> np.ndarray:
    if domain is None:
        return np.ones(np.asarray(like).shape[0], dtype=bool)
    return np.asarray(domain, dtype=bool)


# ------------------------------------------------------------ every domain at once


def _term_sums(
    design: Design, term: Term, codes: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A term's rows (valid, positive weight, in some domain), their weighted y, and per
    domain the sum of weights and of weighted y (one ``bincount`` each over all domains)."""
    w = design.weight
    y = np.asarray(term.values, dtype=float)
    rows = np.asarray(term.rows, dtype=bool) & ~np.isnan(y) & (w > 0)
    x = np.where(rows, y, 0.0)
    bucket = np.where(rows & (codes >= 0), codes, k)
    sw = np.bincount(bucket, weights=np.where(rows, w, 0.0), minlength=k + 1)
    swy = np.bincount(bucket, weights=w * x, minlength=k + 1)
    return rows, x, sw, swy


def domain_contrasts(
    design: Design,
    terms: Sequence[Term],
    codes: np.ndarray,
    k: int,
    *,
    constant: float = 0.0,
) -> dict[str, np.ndarray]:
    """:func:`contrast` of every domain ``g`` at once, each term restricted to the rows with
    ``codes == g`` (``-1``: in no domain): per domain ``estimate``, ``se``, ``n`` (rows in
    any term with a value), ``df`` (PSUs minus strata among the PSUs holding those rows)
    and ``srs_variance`` (the same contrast's variance under simple random sampling of the
    same sizes, NaN when a term has fewer than two rows).

    The influence values of domain ``g`` live on its rows only, so one vector carries all
    domains and one pass of PSU totals by domain (calibration residuals included, as
    :class:`Design` forms them) gives every variance: ``O(rows)`` per term, not per domain.
    """
    codes = np.asarray(codes, dtype=np.int64)
    w = design.weight
    estimate = np.full(k, float(constant))
    z = np.zeros(design.n_rows)
    counted = np.zeros(design.n_rows, dtype=bool)
    empty = np.zeros(k, dtype=bool)
    srs = np.zeros(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        for term in terms:
            rows, x, sw, swy = _term_sums(design, term, codes, k)
            total_w = sw[:k]
            empty |= total_w == 0
            mean = np.where(total_w > 0, swy[:k] / total_w, 0.0)
            estimate += term.coefficient * mean
            inside = rows & (codes >= 0)
            at = np.where(inside, codes, 0)
            dev = np.where(inside, x - mean[at], 0.0)
            z += np.where(inside, term.coefficient * w * dev / total_w[at], 0.0)
            counted |= inside
            bucket = np.where(inside, codes, k)
            n_t = np.bincount(bucket, minlength=k + 1)[:k].astype(float)
            ss = np.bincount(bucket, weights=w * dev * dev, minlength=k + 1)[:k]
            variance = ss / total_w * n_t / (n_t - 1)
            srs += np.where(n_t >= 2, term.coefficient**2 * variance / n_t, np.nan)
    own = np.where(counted, codes, -1)
    variance = design._variance(design._psu_totals(z, np.where(codes >= 0, codes, -1), k))
    se = np.sqrt(np.maximum(variance, 0.0))
    n = np.bincount(np.where(counted, codes, k), minlength=k + 1)[:k].astype(float)
    nan = np.full(k, np.nan)
    return {
        "estimate": np.where(empty, nan, estimate),
        "se": np.where(empty, nan, se),
        "n": np.where(empty, 0.0, n),
        "df": design._domain_df(own, k),
        "srs_variance": srs,
    }


def contrasts_vs_rest(
    design: Design, terms: Sequence[Term], codes: np.ndarray, k: int
) -> dict[str, np.ndarray]:
    """For every domain ``g``, :func:`contrast` of its terms minus the same terms over all
    other rows (``codes != g``, rows in no domain included): ``estimate``, ``se``, ``df``
    (the design's) and ``p_value`` (two-sided t test on that df).

    The rest's influence values ``-c w (y - m_rest) / W_rest`` are, over all rows, a
    domain's two numbers times two vectors (``w y`` and ``w``), so their PSU totals come
    from two passes for all domains; the domain's own rows add one vector by domain.
    """
    codes = np.asarray(codes, dtype=np.int64)
    w = design.weight
    estimate = np.zeros(k)
    z = np.zeros(design.n_rows)
    rest_totals = np.zeros((k, design.n_psu))
    undefined = np.zeros(k, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for term in terms:
            rows, x, sw, swy = _term_sums(design, term, codes, k)
            all_w, all_wy = sw.sum(), swy.sum()
            total_w, rest_w = sw[:k], all_w - sw[:k]
            undefined |= (total_w == 0) | (rest_w <= 0)
            mean = np.where(total_w > 0, swy[:k] / total_w, 0.0)
            rest_mean = np.where(rest_w > 0, (all_wy - swy[:k]) / rest_w, 0.0)
            estimate += term.coefficient * (mean - rest_mean)
            c = term.coefficient
            inside = rows & (codes >= 0)
            at = np.where(inside, codes, 0)
            # own rows: c w (y - m_g) / W_g, plus the rest's term added back on them
            own = c * w * (x - mean[at]) / total_w[at] + c * w * (x - rest_mean[at]) / rest_w[at]
            z += np.where(inside, own, 0.0)
            every = np.where(rows, 0, -1)
            t_wy = design._psu_totals(w * x, every, 1)[0]
            t_w = design._psu_totals(np.where(rows, w, 0.0), every, 1)[0]
            scale = np.where(rest_w > 0, c / rest_w, 0.0)
            rest_totals -= np.outer(scale, t_wy) - np.outer(scale * rest_mean, t_w)
        totals = design._psu_totals(z, np.where(codes >= 0, codes, -1), k) + rest_totals
        variance = design._variance(totals)
        se = np.where(undefined, np.nan, np.sqrt(np.maximum(variance, 0.0)))
        estimate = np.where(undefined, np.nan, estimate)
        df = float(design.df)
        t = np.where(se > 0, np.abs(estimate) / se, np.nan)
        p = 2 * scipy_stats.t.sf(t, df) if df > 0 else np.full(k, np.nan)
    return {"estimate": estimate, "se": se, "df": np.full(k, df), "p_value": p}
