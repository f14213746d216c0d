"""Cell estimates of many indicators at once, on one layout of cells.

:class:`~analytics.stats.cells.CellDesign` estimates one indicator from its per-cell sums
with a dozen ``bincount`` passes over the cells. When a layout has hundreds of thousands
of cells (stratum x PSU x region x group) and dozens of indicators, the same passes run
once per indicator; here they run once for a block of indicators: the per-row terms of
the block are summed into cells by one sparse product (rows x terms), and every later
aggregation (cells to domains, to PSU x domain pairs, to domain x stratum) is one sparse
product over a ``(cells x indicators)`` block. The arithmetic is that of
:meth:`CellDesign.estimate` and :meth:`CellDesign.versus_rest`, column by column, with
the sums taken in the same order (sparse rows keep the cells in ascending order), so the
results agree with them to rounding.

The indirect designs (contrasts of domain means, `analytics.stats.indirect`) are estimated
on the same cells: each term's weights, weighted values, weighted squares and row counts
per cell are its sufficient statistics (:func:`contrasts`, :func:`contrasts_vs_rest`),
as :func:`analytics.stats.indirect.domain_contrasts` and ``contrasts_vs_rest`` compute
them on the rows.

Plain numpy and scipy, no Django.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse, stats

from analytics.stats.cells import CellDesign, Pairs
from analytics.stats.estimation import intervals

Block = dict[str, np.ndarray]  # term name -> (cells x indicators)


def grouping(codes: np.ndarray, k: int) -> sparse.csr_matrix:
    """``(k, len(codes))`` matrix of ones summing the entries of each code (-1: none), in
    ascending order within a code (as ``np.bincount`` adds them)."""
    codes = np.asarray(codes, dtype=np.int64)
    inside = np.flatnonzero(codes >= 0)
    order = inside[np.argsort(codes[inside], kind="stable")]
    indptr = np.concatenate(([0], np.cumsum(np.bincount(codes[inside], minlength=k))))
    return sparse.csr_matrix(
        (np.ones(len(order)), order, indptr), shape=(k, len(codes)), dtype=float
    )


@dataclass
class LayoutOperators:
    """The sparse sums of a layout's cells, made once per layout for every indicator."""

    design: CellDesign
    psu: sparse.csr_matrix  # (PSUs x cells)
    strata: sparse.csr_matrix  # (strata x PSUs)

    @classmethod
    def of(cls, design: CellDesign) -> LayoutOperators:
        n_psu = len(design.psu_stratum)
        return cls(
            design,
            grouping(design.cell_psu, n_psu),
            grouping(design.psu_stratum, design.n_strata),
        )


@dataclass
class DomainOperators:
    """One set of domains on a layout: cells to domains, cells to PSU x domain pairs and
    pairs to domain x stratum, as sparse sums."""

    pairs: Pairs
    k: int
    domains: sparse.csr_matrix  # (k x cells)
    to_pairs: sparse.csr_matrix | None  # (pairs x cells); None when a pair is one cell
    by_stratum: sparse.csr_matrix  # (k * strata x pairs)
    pair_domain: sparse.csr_matrix  # (k x pairs)

    @classmethod
    def of(
        cls, design: CellDesign, cell_domain: np.ndarray, k: int, pairs: Pairs
    ) -> DomainOperators:
        to_pairs = None
        if pairs.cells is None:
            pair_of_cell = np.full(len(cell_domain), -1, np.int64)
            pair_of_cell[pairs.inside] = pairs.inverse.ravel()
            to_pairs = grouping(pair_of_cell, len(pairs.domain))
        key = (
            pairs.key
            if pairs.key is not None
            else pairs.domain * design.n_strata + design.psu_stratum[pairs.psu]
        )
        return cls(
            pairs,
            k,
            grouping(np.where(cell_domain >= 0, cell_domain, -1), k),
            to_pairs,
            grouping(key, k * design.n_strata),
            grouping(pairs.domain, k),
        )

    def pair_totals(self, z: np.ndarray) -> np.ndarray:
        """PSU x domain totals of cell values ``z`` (cells x indicators)."""
        if self.to_pairs is None:
            assert self.pairs.cells is not None
            return z[self.pairs.cells] + 0.0
        return np.asarray(self.to_pairs @ z)

    def per_stratum(self, values: np.ndarray, n_strata: int) -> np.ndarray:
        """Pair values to (domain, stratum, indicator) sums."""
        out = np.asarray(self.by_stratum @ values)
        return out.reshape(self.k, n_strata, *values.shape[1:])


def combine(design: CellDesign, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """As ``CellDesign._combine`` on (domain, stratum, indicator) sums."""
    n_h = design.n_h[None, :, None]
    lonely = design.lonely[None, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        centred = np.where(lonely, s2, s2 - s1 * s1 / np.where(n_h > 0, n_h, 1))
    return np.einsum("khi,h->ki", centred, design.scale)


def _where_valid(block: Block, masked: bool) -> tuple[Block, np.ndarray | bool]:
    """The sums with the cells holding no valid answer set to zero, indicator by indicator
    (``CellDesign.estimate`` leaves them out of its domains). Without rows of weight zero
    (``masked`` off) those cells' sums are all zero already."""
    if not masked:
        return block, True
    valid = block["n"] > 0
    if valid.all():
        return block, valid
    zeroed: dict[int, np.ndarray] = {}  # names may share one array (xx = x, ...)
    for values in block.values():
        if id(values) not in zeroed:
            zeroed[id(values)] = np.where(valid, values, 0.0)
    return {name: zeroed[id(values)] for name, values in block.items()}, valid


def valid_df(ops: DomainOperators, design: CellDesign, n: np.ndarray) -> np.ndarray:
    """Per (domain, indicator): PSUs minus strata among the pairs holding a valid answer
    (``breakdown_cells._valid_df``, every indicator of the block at once)."""
    pairs = ops.pairs
    df = np.repeat(pairs.df[:, None], n.shape[1], axis=1)
    if len(n) and n.min() > 0:
        return df
    held = ops.pair_totals(n) > 0
    partial = ~held.all(axis=0)
    if not partial.any():
        return df
    held = held[:, partial].astype(float)
    has_psu = np.asarray(ops.pair_domain @ held)
    per_stratum = ops.per_stratum(held, design.n_strata)
    has_strata = (per_stratum > 0).sum(axis=1)
    df[:, partial] = has_psu - has_strata
    return df


def estimate(
    design: CellDesign,
    block: Block,
    ops: DomainOperators,
    *,
    binary: np.ndarray,
    ci: Sequence[str],
    df: np.ndarray,
    masked: bool = True,
) -> dict[str, np.ndarray]:
    """:meth:`CellDesign.estimate` of each column of ``block`` (sums ``x d w n n_num xx xd
    dd``), ``binary`` per column, ``ci`` its interval method for proportions and ``df``
    per (domain, column). Returns (domain x column) arrays. ``masked`` off: no row has
    a zero weight (cells without a valid answer then have zero sums)."""
    k, pairs = ops.k, ops.pairs
    block, valid = _where_valid(block, masked)
    inside = pairs.inside[:, None] & valid

    def tot(name: str) -> np.ndarray:
        return np.asarray(ops.domains @ block[name])

    tx, td, tw, n, n_num = tot("x"), tot("d"), tot("w"), tot("n"), tot("n_num")
    bucket = pairs.bucket if pairs.bucket is not None else np.where(pairs.inside, 0, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = tx / td
        r_c = np.vstack([np.nan_to_num(r), np.zeros((1, r.shape[1]))])[bucket]
        d_c = np.vstack([np.where(td != 0, td, 1.0), np.ones((1, r.shape[1]))])[bucket]
        z = np.where(inside, (block["x"] - r_c * block["d"]) / d_c, 0.0)
        t = ops.pair_totals(z)
        s1 = ops.per_stratum(t, design.n_strata)
        s2 = ops.per_stratum(t * t, design.n_strata)
        var = combine(design, s1, s2)
        var = np.where(var < (1e-12 * np.abs(np.nan_to_num(r))) ** 2, 0.0, var)
        se = np.where(np.isfinite(r), np.sqrt(np.maximum(var, 0.0)), np.nan)
        ss = tot("xx") - 2 * r * tot("xd") + r * r * tot("dd")
        dbar = td / tw
        v_srs = ss / tw / dbar**2 / (n - 1)
        deff = var / v_srs
        n_eff = np.where(deff == 0, n, n / deff)
    low, high = np.empty_like(r), np.empty_like(r)
    methods = np.array([c if b else "wald" for c, b in zip(ci, binary, strict=True)])
    for method in set(methods):
        cols = methods == method
        low[:, cols], high[:, cols] = intervals(
            r[:, cols], se[:, cols], df[:, cols], n[:, cols], str(method), 0.95
        )
    return {
        "estimate": r,
        "se": se,
        "ci_low": low,
        "ci_high": high,
        "df": df,
        "n": n,
        "n_num": n_num,
        "n_eff": n_eff,
        "deff": deff,
    }


def versus_rest(
    design: CellDesign,
    operators: LayoutOperators,
    block: Block,
    ops: DomainOperators,
    masked: bool = True,
) -> dict[str, np.ndarray]:
    """:meth:`CellDesign.versus_rest` of each column of ``block``: (domain x column)."""
    k, pairs = ops.k, ops.pairs
    block, valid = _where_valid(block, masked)
    u, v = block["x"], block["d"]
    in_dom = valid & pairs.inside[:, None]
    bucket = pairs.bucket if pairs.bucket is not None else np.where(pairs.inside, 0, k)
    m = u.shape[1]
    tot_u, tot_v = np.asarray(ops.domains @ u), np.asarray(ops.domains @ v)
    all_u, all_v = u.sum(axis=0), v.sum(axis=0)
    pad = np.zeros((1, m))
    with np.errstate(divide="ignore", invalid="ignore"):
        r_a = tot_u / tot_v
        rest_v = all_v - tot_v
        r_b = (all_u - tot_u) / rest_v
        ra = np.vstack([np.nan_to_num(r_a), pad])[bucket]
        rb = np.vstack([np.nan_to_num(r_b), pad])[bucket]
        da = np.vstack([np.where(tot_v != 0, tot_v, 1.0), pad + 1])[bucket]
        db = np.vstack([np.where(rest_v != 0, rest_v, 1.0), pad + 1])[bucket]
        q = np.where(in_dom, (u - ra * v) / da + (u - rb * v) / db, 0.0)
        alpha = 1 / rest_v
        beta = r_b / rest_v
        big_u = np.asarray(operators.psu @ u)
        big_v = np.asarray(operators.psu @ v)
        qt = ops.pair_totals(q)

        def per_stratum(values: np.ndarray) -> np.ndarray:
            return np.asarray(operators.strata @ values)  # (strata x columns)

        su, sv = per_stratum(big_u), per_stratum(big_v)
        suu, svv, suv = (
            per_stratum(big_u * big_u),
            per_stratum(big_v * big_v),
            per_stratum(big_u * big_v),
        )
        h = design.n_strata
        sq = ops.per_stratum(qt, h)
        sqq = ops.per_stratum(qt * qt, h)
        squ = ops.per_stratum(qt * big_u[pairs.psu], h)
        sqv = ops.per_stratum(qt * big_v[pairs.psu], h)
        a, bb = alpha[:, None, :], beta[:, None, :]
        s1 = sq - a * su[None] + bb * sv[None]
        s2 = (
            sqq
            + a * a * suu[None]
            + bb * bb * svv[None]
            - 2 * a * squ
            + 2 * bb * sqv
            - 2 * a * bb * suv[None]
        )
        var = combine(design, np.nan_to_num(s1), np.nan_to_num(s2))
        diff = r_a - r_b
        se = np.where(np.isfinite(diff), np.sqrt(np.maximum(var, 0.0)), np.nan)
        t_stat = np.where(se > 0, diff / se, np.nan)
    p = 2 * stats.t.sf(np.abs(t_stat), design.df) if design.df > 0 else np.full(diff.shape, np.nan)
    return {"estimate": diff, "se": se, "p_value": p}


# ---------------------------------------------------------------------- indirect designs


@dataclass(frozen=True)
class TermSums:
    """One term of a contrast on the cells of a layout: per cell, the sums over the term's
    rows (a value, a positive weight) of ``w``, ``w y`` and ``w y^2``, and their count."""

    coefficient: float
    w: np.ndarray
    wy: np.ndarray
    wyy: np.ndarray
    count: np.ndarray


def contrasts(
    design: CellDesign,
    terms: Sequence[TermSums],
    counted: np.ndarray,
    ops: DomainOperators,
    *,
    constant: float = 0.0,
) -> dict[str, np.ndarray]:
    """``analytics.stats.indirect.domain_contrasts`` from cell sums: per domain
    ``estimate``, ``se``, ``n``, ``df`` and ``srs_variance``. ``counted``: per cell, the
    rows in any term (with a value and a positive weight)."""
    k, pairs = ops.k, ops.pairs
    inside = pairs.inside
    bucket = pairs.bucket if pairs.bucket is not None else np.where(inside, 0, k)
    estimate = np.full(k, float(constant))
    z = np.zeros(len(inside))
    empty = np.zeros(k, dtype=bool)
    srs = np.zeros(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        for term in terms:
            total_w = ops.domains @ term.w
            swy = ops.domains @ term.wy
            empty |= total_w == 0
            mean = np.where(total_w > 0, swy / total_w, 0.0)
            estimate += term.coefficient * mean
            m_c = np.append(mean, 0.0)[bucket]
            w_c = np.append(total_w, 1.0)[bucket]
            z += np.where(inside, term.coefficient * (term.wy - m_c * term.w) / w_c, 0.0)
            n_t = ops.domains @ term.count
            ss = ops.domains @ term.wyy - 2 * mean * swy + mean * mean * total_w
            ss = np.where(ss > 1e-12 * np.abs(ops.domains @ term.wyy), ss, 0.0)
            variance = ss / total_w * n_t / (n_t - 1)
            srs += np.where(n_t >= 2, term.coefficient**2 * variance / n_t, np.nan)
        t = ops.pair_totals(z[:, None])[:, 0]
        s1 = ops.per_stratum(t, design.n_strata)
        s2 = ops.per_stratum(t * t, design.n_strata)
        variance = combine(design, s1[..., None], s2[..., None])[:, 0]
    se = np.sqrt(np.maximum(variance, 0.0))
    n = ops.domains @ counted
    df = valid_df(ops, design, counted[:, None])[:, 0]
    nan = np.full(k, np.nan)
    return {
        "estimate": np.where(empty, nan, estimate),
        "se": np.where(empty, nan, se),
        "n": np.where(empty, 0.0, n),
        "df": df,
        "srs_variance": srs,
    }


def contrasts_vs_rest(
    design: CellDesign,
    operators: LayoutOperators,
    terms: Sequence[TermSums],
    ops: DomainOperators,
) -> dict[str, np.ndarray]:
    """``analytics.stats.indirect.contrasts_vs_rest`` from cell sums: each domain's contrast
    minus the same contrast over every other cell (cells in no domain included), with
    ``estimate``, ``se`` and ``p_value`` (t on the design df). The PSU totals are formed
    densely, ``(domains x PSUs)``: meant for the few domains of a national breakdown."""
    k, pairs = ops.k, ops.pairs
    inside = pairs.inside
    bucket = pairs.bucket if pairs.bucket is not None else np.where(inside, 0, k)
    n_psu = len(design.psu_stratum)
    estimate = np.zeros(k)
    z = np.zeros(len(inside))
    rest = np.zeros((k, n_psu))
    undefined = np.zeros(k, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for term in terms:
            c = term.coefficient
            total_w, swy = ops.domains @ term.w, ops.domains @ term.wy
            all_w, all_wy = term.w.sum(), term.wy.sum()
            rest_w = all_w - total_w
            undefined |= (total_w == 0) | (rest_w <= 0)
            mean = np.where(total_w > 0, swy / total_w, 0.0)
            rest_mean = np.where(rest_w > 0, (all_wy - swy) / rest_w, 0.0)
            estimate += c * (mean - rest_mean)
            m_c, r_c = np.append(mean, 0.0)[bucket], np.append(rest_mean, 0.0)[bucket]
            w_c, rw_c = np.append(total_w, 1.0)[bucket], np.append(rest_w, 1.0)[bucket]
            own = c * (term.wy - m_c * term.w) / w_c + c * (term.wy - r_c * term.w) / rw_c
            z += np.where(inside, own, 0.0)
            t_wy, t_w = operators.psu @ term.wy, operators.psu @ term.w
            scale = np.where(rest_w > 0, c / rest_w, 0.0)
            rest -= np.outer(scale, t_wy) - np.outer(scale * rest_mean, t_w)
        totals = rest
        np.add.at(totals, (pairs.domain, pairs.psu), ops.pair_totals(z[:, None])[:, 0])
        s1 = np.asarray(operators.strata @ totals.T).T
        s2 = np.asarray(operators.strata @ (totals * totals).T).T
        variance = combine(design, s1[..., None], s2[..., None])[:, 0]
        se = np.where(undefined, np.nan, np.sqrt(np.maximum(variance, 0.0)))
        estimate = np.where(undefined, np.nan, estimate)
        t = np.where(se > 0, np.abs(estimate) / se, np.nan)
    p = 2 * stats.t.sf(t, design.df) if design.df > 0 else np.full(k, np.nan)
    return {"estimate": estimate, "se": se, "p_value": p}
