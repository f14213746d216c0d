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
