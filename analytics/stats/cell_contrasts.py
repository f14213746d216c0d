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
from analytics.stats.indirect import Term


@dataclass(frozen=True)
class TermSums:
    """One term of a contrast on a layout of cells: per cell, the sums over the term's rows
    (a value and a positive weight) of ``w``, ``w y`` and ``w y^2``, and their count."""

    coefficient: float
    w: np.ndarray
    wy: np.ndarray
    wyy: np.ndarray
    count: np.ndarray


@dataclass(frozen=True)
class RowTotals:
    """One term's totals of ``w`` and ``w y`` per domain summed over the rows in their
    order, the last entry for the rows in no domain (``domain_contrasts``' sums)."""

    w: np.ndarray
    wy: np.ndarray


class TermTable:
    """The distinct terms of several contrasts, each with its per-row arrays made once.

    A gap shares its design's terms, and every gap the direct question's term, so the six
    indirect indicators of the instrument hold five distinct terms: their sums per cell are
    made once per layout of cells, not once per indicator. A term is known by its values
    and rows (not its coefficient, which the contrast applies); the sums are the same
    ``bincount`` of the same per-row arrays, so the same numbers, as term by term.
    """

    def __init__(self, weight: np.ndarray) -> None:
        self.weight = weight
        self._given: list[tuple[np.ndarray, np.ndarray]] = []  # values, rows as given
        self.rows: list[np.ndarray] = []  # the rows of each term's mean
        self.per_row: list[tuple[np.ndarray, ...]] = []  # w, w y, w y^2, row count
        self._counted: dict[frozenset[int], np.ndarray] = {}

    def index(self, term: Term) -> int:
        """The distinct term's number, its per-row arrays made when first seen."""
        values = np.asarray(term.values, dtype=float)
        given = np.asarray(term.rows, dtype=bool)
        for i, (v, r) in enumerate(self._given):
            if _same(v, values) and _same(r, given):
                return i
        w = self.weight
        rows = given & ~np.isnan(values) & (w > 0)
        x = np.where(rows, values, 0.0)
        wr = np.where(rows, w, 0.0)
        self._given.append((values, given))
        self.rows.append(rows)
        self.per_row.append((wr, wr * x, wr * x * x, rows.astype(float)))
        return len(self.rows) - 1

    def counted(self, terms: frozenset[int]) -> np.ndarray:
        """Rows in any of the terms, as a float per row (the contrast's ``n``)."""
        out = self._counted.get(terms)
        if out is None:
            union = np.zeros(len(self.weight), dtype=bool)
            for i in sorted(terms):
                union |= self.rows[i]
            out = self._counted[terms] = union.astype(float)
        return out

    def row_totals(self, i: int, bucket: np.ndarray, k: int) -> RowTotals:
        """Term ``i``'s totals per domain (``bucket``: per row its domain, ``k`` in none)
        over the rows, in their order."""
        wr, wry = self.per_row[i][:2]
        return RowTotals(
            np.bincount(bucket, weights=wr, minlength=k + 1),
            np.bincount(bucket, weights=wry, minlength=k + 1),
        )

    def cell_sums(self, i: int, row_cell: np.ndarray, n_cells: int) -> tuple[np.ndarray, ...]:
        """Term ``i``'s per-cell sums of ``w``, ``w y``, ``w y^2`` and its row count."""
        return tuple(np.bincount(row_cell, weights=v, minlength=n_cells) for v in self.per_row[i])


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    step = max(len(a) // 1000, 1)  # a sample first: different terms differ at once
    if not np.array_equal(a[::step], b[::step], equal_nan=a.dtype.kind == "f"):
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))


def _by_domain(pairs: Pairs, k: int, values: np.ndarray) -> np.ndarray:
    assert pairs.bucket is not None
    return np.bincount(pairs.bucket, weights=values, minlength=k + 1)[:k]


def _variance(design: CellDesign, pairs: Pairs, k: int, z: np.ndarray) -> np.ndarray:
    """Per domain, the variance of cell influence values ``z`` (zero outside the domains)."""
    if pairs.cell_key is not None:
        s1, s2 = design._cell_stratum_terms(z, pairs.cell_key, k)
    else:
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
    row_totals: Sequence[RowTotals] | None = None,
) -> dict[str, np.ndarray]:
    """``domain_contrasts`` from cell sums: per domain ``estimate``, ``se``, ``n`` (rows in
    any term, ``counted`` per cell) and ``srs_variance``; the domains are those of
    ``pairs`` (``CellDesign.pairs``). The domain df is the caller's (the PSUs holding
    counted rows). ``row_totals``: each term's domain totals summed over the rows (as
    ``domain_contrasts`` sums them), for means identical to the row path's."""
    bucket = pairs.bucket
    assert bucket is not None
    inside = pairs.inside
    estimate = np.full(k, float(constant))
    z = np.zeros(len(inside))
    empty = np.zeros(k, dtype=bool)
    srs = np.zeros(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, term in enumerate(terms):
            if row_totals is None:
                total_w = _by_domain(pairs, k, term.w)
                swy = _by_domain(pairs, k, term.wy)
            else:
                total_w, swy = row_totals[i].w[:k], row_totals[i].wy[:k]
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
    design: CellDesign,
    terms: Sequence[TermSums],
    pairs: Pairs,
    k: int,
    *,
    row_totals: Sequence[RowTotals] | None = None,
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
        for i, term in enumerate(terms):
            c = term.coefficient
            if row_totals is None:
                total_w, swy = _by_domain(pairs, k, term.w), _by_domain(pairs, k, term.wy)
                all_w, all_wy = term.w.sum(), term.wy.sum()
            else:
                total_w, swy = row_totals[i].w[:k], row_totals[i].wy[:k]
                all_w, all_wy = row_totals[i].w.sum(), row_totals[i].wy.sum()
            rest_w = all_w - total_w
            undefined |= (total_w == 0) | (rest_w <= 0)
            mean = np.where(total_w > 0, swy / total_w, 0.0)
            rest_mean = np.where(rest_w > 0, (all_wy - swy) / rest_w, 0.0)
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
