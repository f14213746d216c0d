"""The indirect designs' contrasts from per-cell sums, for many domains at once.

An indirect estimate (`analytics.stats.indirect`) is ``constant + sum_t c_t m_t`` with
``m_t`` the weighted mean of term ``t`` over its rows in the domain. Its influence values
``c_t w (y - m_t) / W_t`` sum, within a cell of stratum x PSU x region x group, to
``c_t (S_wy - m_t S_w) / W_t``, so each term's weights, weighted values, weighted squares
and row counts per cell (:class:`TermSums`) are all :func:`contrasts` and
:func:`contrasts_vs_rest` need: the same numbers as
:func:`analytics.stats.indirect.domain_contrasts` and ``contrasts_vs_rest`` on the rows
(with sampling weights), from a few passes over the cells instead of the rows. The variance
is :class:`~analytics.stats.cells.CellDesign`'s (with-replacement ultimate clusters,
lonely PSUs ``"adjust"``).

Plain numpy and scipy, no Django.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analytics.stats.cells import CellDesign, Pairs


@dataclass(frozen=True)
class TermSums:
    """One term of a contrast on a layout of cells: per cell, the sums over the term's rows
    (a value and a positive weight) of ``w``, ``w y`` and ``w y^2``, and their count."""

    coefficient: float
    w: np.ndarray
    wy: np.ndarray
    wyy: np.ndarray
    count: np.ndarray


def _by_domain(pairs: Pairs, k: int, values: np.ndarray) -> np.ndarray:
    assert pairs.bucket is not None
    return np.bincount(pairs.bucket, weights=values, minlength=k + 1)[:k]


def _variance(design: CellDesign, pairs: Pairs, k: int, z: np.ndarray) -> np.ndarray:
    """Per domain, the variance of cell influence values ``z`` (zero outside the domains)."""
    dom, psu, t = design.psu_domain_totals(z, pairs)
    s1, s2 = design._stratum_terms(dom, psu, t, k, pairs.key)
    return design._combine(s1, s2)


def contrasts(
    design: CellDesign,
    terms: Sequence[TermSums],
    counted: np.ndarray,
    pairs: Pairs,
    k: int,
    *,
    constant: float = 0.0,
) -> dict[str, np.ndarray]:
    """``domain_contrasts`` from cell sums: per domain ``estimate``, ``se``, ``n`` (rows in
    any term, ``counted`` per cell) and ``srs_variance``; the domains are those of
    ``pairs`` (``CellDesign.pairs``). The domain df is the caller's (the PSUs holding
    counted rows)."""
    bucket = pairs.bucket
    assert bucket is not None
    inside = pairs.inside
    estimate = np.full(k, float(constant))
    z = np.zeros(len(inside))
    empty = np.zeros(k, dtype=bool)
    srs = np.zeros(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        for term in terms:
            total_w = _by_domain(pairs, k, term.w)
            swy = _by_domain(pairs, k, term.wy)
            swyy = _by_domain(pairs, k, term.wyy)
            empty |= total_w == 0
            mean = np.where(total_w > 0, swy / total_w, 0.0)
            estimate += term.coefficient * mean
            m_c = np.append(mean, 0.0)[bucket]
            w_c = np.append(np.where(total_w > 0, total_w, 1.0), 1.0)[bucket]
            z += np.where(inside, term.coefficient * (term.wy - m_c * term.w) / w_c, 0.0)
            n_t = _by_domain(pairs, k, term.count)
            # sum of w (y - m)^2 over the domain's rows; rounding residue of a constant y is 0
            ss = swyy - 2 * mean * swy + mean * mean * total_w
            ss = np.where(ss > 1e-12 * np.abs(swyy), ss, 0.0)
            variance = ss / total_w * n_t / (n_t - 1)
            srs += np.where(n_t >= 2, term.coefficient**2 * variance / n_t, np.nan)
        variance = _variance(design, pairs, k, z)
    se = np.sqrt(np.maximum(variance, 0.0))
    n = _by_domain(pairs, k, counted)
    nan = np.full(k, np.nan)
    return {
        "estimate": np.where(empty, nan, estimate),
        "se": np.where(empty, nan, se),
        "n": np.where(empty, 0.0, n),
        "srs_variance": srs,
    }


def contrasts_vs_rest(
    design: CellDesign, terms: Sequence[TermSums], pairs: Pairs, k: int
) -> dict[str, np.ndarray]:
    """``contrasts_vs_rest`` from cell sums: each domain's contrast minus the same contrast
    over every other cell (cells in no domain included): ``estimate``, ``se`` and
    ``p_value`` (t on the design df). The PSU totals are formed densely, ``(domains x
    PSUs)``: meant for the few domains of a national breakdown."""
    bucket = pairs.bucket
    assert bucket is not None
    inside = pairs.inside
    n_psu = len(design.psu_stratum)
    estimate = np.zeros(k)
    z = np.zeros(len(inside))
    totals = np.zeros((k, n_psu))
    undefined = np.zeros(k, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for term in terms:
            c = term.coefficient
            total_w, swy = _by_domain(pairs, k, term.w), _by_domain(pairs, k, term.wy)
            rest_w = term.w.sum() - total_w
            undefined |= (total_w == 0) | (rest_w <= 0)
            mean = np.where(total_w > 0, swy / total_w, 0.0)
            rest_mean = np.where(rest_w > 0, (term.wy.sum() - swy) / rest_w, 0.0)
            estimate += c * (mean - rest_mean)
            m_c, r_c = np.append(mean, 0.0)[bucket], np.append(rest_mean, 0.0)[bucket]
            w_c = np.append(np.where(total_w > 0, total_w, 1.0), 1.0)[bucket]
            rw_c = np.append(np.where(rest_w > 0, rest_w, 1.0), 1.0)[bucket]
            own = c * (term.wy - m_c * term.w) / w_c + c * (term.wy - r_c * term.w) / rw_c
            z += np.where(inside, own, 0.0)
            t_wy = np.bincount(design.cell_psu, weights=term.wy, minlength=n_psu)
            t_w = np.bincount(design.cell_psu, weights=term.w, minlength=n_psu)
            scale = np.where(rest_w > 0, c / rest_w, 0.0)
            totals -= np.outer(scale, t_wy) - np.outer(scale * rest_mean, t_w)
        dom, psu, own_totals = design.psu_domain_totals(z, pairs)
        totals[dom, psu] += own_totals  # one total per PSU x domain pair
        strata = design.psu_stratum
        s1 = np.stack([np.bincount(strata, weights=t, minlength=design.n_strata) for t in totals])
        s2 = np.stack(
            [np.bincount(strata, weights=t * t, minlength=design.n_strata) for t in totals]
        )
        variance = design._combine(s1, s2)
        se = np.where(undefined, np.nan, np.sqrt(np.maximum(variance, 0.0)))
        estimate = np.where(undefined, np.nan, estimate)
        t_stat = np.where(se > 0, np.abs(estimate) / se, np.nan)
    p = 2 * stats.t.sf(t_stat, design.df) if design.df > 0 else np.full(k, np.nan)
    return {"estimate": estimate, "se": se, "p_value": p}
