"""Sufficient statistics per cell, for estimating every indicator of a big wave fast.

Without calibration, every quantity of the Taylor-linearised ratio estimator depends on
the interviews only through sums within cells of stratum x PSU x region: the influence
values of a domain estimate are ``(x - R d) w / D`` row by row, so their PSU totals are
``(Sx - R Sd) / D`` cell by cell. Collapsing a million interviews to their cells (about
one per PSU) once per indicator, and keeping those sums between runs so that new
interviews only add to them, makes a recomputation cost a few passes over the cells
instead of many over the rows.

The variance is the same with-replacement ultimate-cluster formula as
:class:`analytics.stats.estimation.Design` (lonely PSUs: ``"adjust"``), evaluated on the
non-zero PSU x domain totals only; region-vs-rest differences expand the rest-of-country
terms into per-stratum sums, so no ``domains x PSUs`` matrix is formed. Results are
identical to :class:`~analytics.stats.estimation.Design` on the rows (tests check it). With
weights raked to population margins the cell sums are taken with the raked weights and the
calibration residuals are corrected for per stratum (:class:`CellCalibration`), still with
no pass over the rows per domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import sparse, stats

from analytics.stats.estimation import (
    RAKING_BACKFIT_ITERATIONS,
    intervals,
    vs_rest_linearisation,
)

SUMS = ("x", "d", "w", "n", "n_num", "xx", "xd", "dd")


def _first_rows(ids: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Row of the first occurrence of each id in ``start..stop-1``."""
    values, first = np.unique(ids, return_index=True)
    keep = values >= start
    assert np.array_equal(values[keep], np.arange(start, stop))
    return first[keep]


class CellIndex:
    """Cells (stratum x PSU x region) and PSUs (stratum x PSU label), in order of first
    appearance, so that appending interviews keeps every existing id."""

    def __init__(self) -> None:
        self.cell_keys = pd.Index(np.zeros(0, np.int64))
        self.psu_keys = pd.Index(np.zeros(0, np.int64))
        self.cell_psu = np.zeros(0, np.int64)
        self.cell_region = np.zeros(0, np.int64)
        self.psu_stratum = np.zeros(0, np.int64)
        self.row_cell = np.zeros(0, np.int64)

    @staticmethod
    def _extend(index: pd.Index, keys: np.ndarray) -> tuple[pd.Index, np.ndarray]:
        ids = index.get_indexer(keys)
        missing = ids < 0
        if missing.any():
            new = pd.unique(keys[missing])
            index = index.append(pd.Index(new))
            ids = index.get_indexer(keys)
        return index, ids

    def add_rows(self, stratum: np.ndarray, psu: np.ndarray, region: np.ndarray) -> None:
        stratum = stratum.astype(np.int64)
        psu_key = (stratum << 32) | psu.astype(np.int64)
        known = len(self.psu_keys)
        self.psu_keys, psu_id = self._extend(self.psu_keys, psu_key)
        if len(self.psu_keys) > known:
            first = _first_rows(psu_id, known, len(self.psu_keys))
            self.psu_stratum = np.concatenate([self.psu_stratum, stratum[first]])
        cell_key = (psu_id.astype(np.int64) << 24) | region.astype(np.int64)
        known = len(self.cell_keys)
        self.cell_keys, cell_id = self._extend(self.cell_keys, cell_key)
        if len(self.cell_keys) > known:
            first = _first_rows(cell_id, known, len(self.cell_keys))
            self.cell_psu = np.concatenate([self.cell_psu, psu_id[first]])
            self.cell_region = np.concatenate([self.cell_region, region[first].astype(np.int64)])
        self.row_cell = np.concatenate([self.row_cell, cell_id.astype(np.int64)])

    @property
    def n_cells(self) -> int:
        return len(self.cell_keys)

    @property
    def n_psu(self) -> int:
        return len(self.psu_keys)


def cell_sums(
    row_cell: np.ndarray, n_cells: int, weight: np.ndarray, num: np.ndarray, den: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Per-cell sums of one indicator's rows (see ``SUMS``)."""
    valid = ~np.isnan(num) if den is None else ~(np.isnan(num) | np.isnan(den))
    x = np.where(valid, num, 0.0)
    wv = np.where(valid, weight, 0.0)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(row_cell, weights=values, minlength=n_cells)

    out = {"x": total(wv * x), "n": total(valid & (weight != 0)), "n_num": total(valid & (x > 0))}
    out["w"] = total(wv)
    binary = bool(((x == 0.0) | (x == 1.0)).all())  # x is 0 outside the valid rows
    out["xx"] = out["x"] if binary else total(wv * x * x)
    if den is None:
        out["d"], out["xd"], out["dd"] = out["w"], out["x"], out["w"]
    else:
        d = np.where(valid, den, 0.0)
        out["d"], out["xd"], out["dd"] = total(wv * d), total(wv * x * d), total(wv * d * d)
    out["binary"] = np.array(binary and den is None)
    return out


def add_sums(a: dict[str, np.ndarray], b: dict[str, np.ndarray], n_cells: int) -> dict:
    """Sums of ``a`` (fewer cells) and ``b``: new interviews added to stored sums."""
    out = {}
    for key in SUMS:
        grown = np.zeros(n_cells)
        grown[: len(a[key])] = a[key]
        out[key] = grown + b[key]
    out["binary"] = np.array(bool(a["binary"]) and bool(b["binary"]))
    return out


def _all_cells_count(sums: dict[str, np.ndarray]) -> bool:
    """Whether the cells with no valid answer may be counted in their domains: none there,
    or (``sums["zero_when_empty"]``, set when no row has a zero weight) all their sums are
    zeros, which add nothing to any total (a sum never becomes -0.0 by adding +-0.0)."""
    if bool(sums.get("zero_when_empty", False)):
        return True
    return bool(len(sums["n"]) and sums["n"].min() > 0)


@dataclass(frozen=True)
class Pairs:
    inside: np.ndarray  # cells in some domain
    inverse: np.ndarray  # pair of each such cell
    domain: np.ndarray  # per pair
    psu: np.ndarray  # per pair
    df: np.ndarray  # per domain
    key: np.ndarray | None = None  # per pair: domain x strata + stratum of its PSU
    cells: np.ndarray | None = None  # per pair: its one cell, when no pair holds two
    bucket: np.ndarray | None = None  # per cell: its domain, k outside every domain
    # per cell: its pair's key (k x strata for cells in no domain), when each pair is one
    # cell and the cells of a domain come in the pairs' order, so that sums over the cells
    # in their order are the sums over the pairs in theirs (the same numbers, no gather)
    cell_key: np.ndarray | None = None


@dataclass
class CellDesign:
    """The design structure of the cells: PSUs per stratum and the variance scale."""

    cell_psu: np.ndarray
    psu_stratum: np.ndarray
    n_strata: int = field(init=False)
    n_h: np.ndarray = field(init=False)
    scale: np.ndarray = field(init=False)
    lonely: np.ndarray = field(init=False)
    df: float = field(init=False)

    def __post_init__(self) -> None:
        self.n_strata = int(self.psu_stratum.max()) + 1 if len(self.psu_stratum) else 0
        self.n_h = np.bincount(self.psu_stratum, minlength=self.n_strata).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            # "adjust" for a lonely PSU: centred at zero, weight 1 (as Design's default)
            self.scale = np.where(self.n_h > 1, self.n_h / (self.n_h - 1), 1.0)
        self.lonely = self.n_h == 1
        present = self.n_h > 0
        self.df = float(self.n_h[present].sum() - present.sum())

    def _stratum_terms(
        self,
        key_domain: np.ndarray,
        key_psu: np.ndarray,
        totals: np.ndarray,
        k: int,
        idx: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per (domain, stratum): sum and sum of squares of PSU totals (``idx``: the
        pairs' ``key``, when known)."""
        if idx is None:
            idx = key_domain * self.n_strata + self.psu_stratum[key_psu]
        s1 = np.bincount(idx, weights=totals, minlength=k * self.n_strata)
        s2 = np.bincount(idx, weights=totals * totals, minlength=k * self.n_strata)
        return s1.reshape(k, self.n_strata), s2.reshape(k, self.n_strata)

    def _cell_stratum_terms(
        self, z: np.ndarray, cell_key: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``_stratum_terms`` of the PSU x domain totals when each is one cell: cell values
        ``z`` (zero outside the domains) summed in the cells' order (``Pairs.cell_key``)."""
        size = k * self.n_strata
        s1 = np.bincount(cell_key, weights=z, minlength=size + 1)[:size]
        s2 = np.bincount(cell_key, weights=z * z, minlength=size + 1)[:size]
        return s1.reshape(k, self.n_strata), s2.reshape(k, self.n_strata)

    def _combine(self, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            centred = np.where(self.lonely, s2, s2 - s1 * s1 / np.where(self.n_h > 0, self.n_h, 1))
        return centred @ self.scale

    def pairs(self, cell_domain: np.ndarray, k: int) -> Pairs:
        """The PSU x domain pairs of a set of domains (the same for every indicator)."""
        inside = cell_domain >= 0
        n_psu = max(len(self.psu_stratum), 1)
        keys, inverse = np.unique(
            cell_domain[inside] * n_psu + self.cell_psu[inside], return_inverse=True
        )
        domain, psu = keys // n_psu, keys % n_psu
        # domain df: PSUs holding the domain (any interview) minus their strata
        has_psu = np.bincount(domain, minlength=k)[:k]
        key = domain * self.n_strata + self.psu_stratum[psu]
        strata = np.unique(key)
        has_strata = np.bincount(strata // self.n_strata, minlength=k)[:k]
        cells = None
        if len(keys) == len(inverse):  # one cell per pair: totals are a reordering
            cells = np.empty(len(keys), np.int64)
            cells[inverse.ravel()] = np.flatnonzero(inside)
        bucket = np.where(inside, cell_domain, k)
        df = (has_psu - has_strata).astype(float)
        cell_key = None
        if cells is not None and bool(np.all((np.diff(cells) > 0) | (np.diff(domain) != 0))):
            cell_key = np.full(len(cell_domain), k * self.n_strata, np.int64)
            cell_key[cells] = key
        return Pairs(inside, inverse, domain, psu, df, key, cells, bucket, cell_key)

    def valid_df(self, pairs: Pairs, n: np.ndarray, k: int) -> Pairs:
        """The pairs with each domain's df counted over PSUs holding a valid answer (``n``
        per cell: the rows counted; R's degf of the domain subset, as
        ``Design.ratio(df_method="domain")``)."""
        if len(n) and n.min() > 0:
            return pairs  # every cell holds a valid answer, so every pair: the design's df
        if pairs.cells is not None:
            valid = n[pairs.cells] > 0
        else:
            held = np.bincount(pairs.inverse, weights=n[pairs.inside], minlength=len(pairs.domain))
            valid = held > 0
        if valid.all():
            return pairs  # every PSU x domain pair holds a valid answer: the design's df
        n_strata = max(self.n_strata, 1)
        domain = pairs.domain[valid]
        key = (
            pairs.key
            if pairs.key is not None
            else pairs.domain * n_strata + self.psu_stratum[pairs.psu]
        )
        has_psu = np.bincount(domain, minlength=k)[:k]
        per_stratum = np.bincount(key[valid], minlength=k * n_strata).reshape(k, n_strata)
        has_strata = (per_stratum > 0).sum(axis=1)
        return replace(pairs, df=(has_psu - has_strata).astype(float))

    def psu_domain_totals(
        self, z: np.ndarray, pairs: Pairs
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """PSU x domain totals of cell values ``z``: (domain, psu, total)."""
        if pairs.cells is not None:  # as the sums below, which start at 0.0 (no -0.0)
            return pairs.domain, pairs.psu, z[pairs.cells] + 0.0
        totals = np.bincount(pairs.inverse, weights=z[pairs.inside], minlength=len(pairs.domain))
        return pairs.domain, pairs.psu, totals

    def estimate(
        self,
        sums: dict[str, np.ndarray],
        cell_domain: np.ndarray,
        k: int,
        *,
        ci: str,
        pairs: Pairs | None = None,
        calibrated: Calibrated | None = None,
    ) -> dict[str, np.ndarray]:
        """As ``Design.ratio(..., domain_codes, ci=ci, df_method="domain")`` on the rows
        (with ``calibrated``: the raking, its per-indicator group sums and the domain of
        each group; ``sums`` then hold the raked weights)."""
        pairs = pairs or self.pairs(cell_domain, k)
        if pairs.bucket is not None and _all_cells_count(sums):
            inside, b = pairs.inside, pairs.bucket  # a cell with no answer adds only zeros
        else:
            inside = (cell_domain >= 0) & (sums["n"] > 0)
            b = np.where(inside, cell_domain, k)

        done: dict[int, np.ndarray] = {}  # a sum that is another's (xx of a 0/1 x) once

        def tot(name: str) -> np.ndarray:
            values = sums[name]
            if id(values) not in done:
                done[id(values)] = np.bincount(b, weights=values, minlength=k + 1)[:k]
            return done[id(values)]

        tx, td, tw, n, n_num = tot("x"), tot("d"), tot("w"), tot("n"), tot("n_num")
        with np.errstate(divide="ignore", invalid="ignore"):
            r = tx / td
            r_c = np.append(np.nan_to_num(r), 0.0)[b]
            d_c = np.append(np.where(td != 0, td, 1.0), 1.0)[b]
            z = np.where(inside, (sums["x"] - r_c * sums["d"]) / d_c, 0.0)
            if calibrated is None and pairs.cell_key is not None:
                s1, s2 = self._cell_stratum_terms(z, pairs.cell_key, k)
            else:
                dom, psu, t = self.psu_domain_totals(z, pairs)
                s1, s2 = self._stratum_terms(dom, psu, t, k, pairs.key)
            if calibrated is not None:
                cal, groups, group_domain = calibrated
                a = cal.offsets_ratio(groups, group_domain, k, r, td)
                s1, s2 = cal.correct(s1, s2, pairs, t, a, k)
            var = self._combine(s1, s2)
            var = np.where(var < (1e-12 * np.abs(np.nan_to_num(r))) ** 2, 0.0, var)
            se = np.where(np.isfinite(r), np.sqrt(np.maximum(var, 0.0)), np.nan)
            ss = tot("xx") - 2 * r * tot("xd") + r * r * tot("dd")
            dbar = td / tw
            v_srs = ss / tw / dbar**2 / (n - 1)
            deff = var / v_srs
            n_eff = np.where(deff == 0, n, n / deff)
        df = pairs.df
        method = ci if bool(sums["binary"]) else "wald"
        low, high = intervals(r, se, df, n, method, 0.95)
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
        self,
        sums: dict[str, np.ndarray],
        cell_domain: np.ndarray,
        k: int,
        *,
        pairs: Pairs | None = None,
        calibrated: Calibrated | None = None,
    ) -> dict[str, np.ndarray]:
        """As ``Design.domains_vs_rest`` on the rows: each domain minus all other rows."""
        pairs = pairs or self.pairs(cell_domain, k)
        if pairs.bucket is not None and _all_cells_count(sums):
            u, v = sums["x"], sums["d"]  # a cell with no answer adds only zeros
            in_dom, bucket = pairs.inside, pairs.bucket
        else:
            valid = sums["n"] > 0
            u = np.where(valid, sums["x"], 0.0)
            v = np.where(valid, sums["d"], 0.0)
            in_dom = valid & (cell_domain >= 0)
            bucket = np.where(in_dom, cell_domain, k)
        r_a, r_b, rest_v, q = vs_rest_linearisation(u, v, in_dom, bucket, k)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = 1 / rest_v  # t_ap = Q_ap - alpha_a U_p + beta_a V_p
            beta = r_b / rest_v
            n_psu = len(self.psu_stratum)
            big_u = np.bincount(self.cell_psu, weights=u, minlength=n_psu)
            big_v = np.bincount(self.cell_psu, weights=v, minlength=n_psu)

            def per_stratum(values: np.ndarray) -> np.ndarray:
                return np.bincount(self.psu_stratum, weights=values, minlength=self.n_strata)

            su, sv = per_stratum(big_u), per_stratum(big_v)
            suu, svv, suv = (
                per_stratum(big_u * big_u),
                per_stratum(big_v * big_v),
                per_stratum(big_u * big_v),
            )
            size = k * self.n_strata
            if calibrated is None and pairs.cell_key is not None:
                # each pair one cell, in the cells' order: the sums below over the cells
                idx, qt, psu = pairs.cell_key, q, self.cell_psu
            else:
                dom, psu, qt = self.psu_domain_totals(q, pairs)
                idx = (
                    pairs.key
                    if pairs.key is not None
                    else dom * self.n_strata + self.psu_stratum[psu]
                )

            def by_domain_stratum(values: np.ndarray) -> np.ndarray:
                total = np.bincount(idx, weights=values, minlength=size + 1)[:size]
                return total.reshape(k, self.n_strata)

            sq = by_domain_stratum(qt)
            sqq = by_domain_stratum(qt * qt)
            squ = by_domain_stratum(qt * big_u[psu])
            sqv = by_domain_stratum(qt * big_v[psu])
            a, bb = alpha[:, None], beta[:, None]
            s1 = sq - a * su + bb * sv
            s2 = sqq + a * a * suu + bb * bb * svv - 2 * a * squ + 2 * bb * sqv - 2 * a * bb * suv
            if calibrated is not None:
                cal, groups, group_domain = calibrated
                # a domain holding every row has no rest: its difference is NaN anyway
                al = np.where(np.isfinite(alpha), alpha, 0.0)
                be = np.where(np.isfinite(beta), beta, 0.0)
                da = v.sum() - rest_v
                da = np.where(da != 0, da, 1.0)
                db = np.where(rest_v != 0, rest_v, 1.0)
                cx = 1 / da + 1 / db
                cd = -(np.nan_to_num(r_a) / da + np.nan_to_num(r_b) / db)
                a = cal.offsets_versus(groups, group_domain, k, (cx, cd, al, be))
                s1, s2 = cal.correct(np.nan_to_num(s1), np.nan_to_num(s2), pairs, qt, a, k)
                s2 = (
                    s2
                    + 2 * al[:, None] * (a @ cal.weighted_by_psu(big_u).T)
                    - 2 * be[:, None] * (a @ cal.weighted_by_psu(big_v).T)
                )
            var = self._combine(np.nan_to_num(s1), np.nan_to_num(s2))
            diff = r_a - r_b
            se = np.where(np.isfinite(diff), np.sqrt(np.maximum(var, 0.0)), np.nan)
            t_stat = np.where(se > 0, diff / se, np.nan)
        p = 2 * stats.t.sf(np.abs(t_stat), self.df) if self.df > 0 else np.full(k, np.nan)
        return {"estimate": diff, "se": se, "p_value": p}


Calibrated = tuple["CellCalibration", tuple[list[np.ndarray], list[np.ndarray]], np.ndarray]


def _backfit(
    base: list[np.ndarray], cross: list[list[sparse.csr_matrix]], counts: list[np.ndarray]
) -> np.ndarray:
    """Cell offsets of the raking residuals (as ``Design._psu_totals``), concatenated
    over the margins: shape ``(k, sum of margin cells)``."""
    k = base[0].shape[0]
    offsets = [np.zeros((k, len(c))) for c in counts]
    for _ in range(RAKING_BACKFIT_ITERATIONS):
        for i, count in enumerate(counts):
            cell_sum = base[i].copy()
            for j in range(len(counts)):
                cell_sum -= (cross[i][j] @ offsets[j].T).T
            offsets[i] += cell_sum / count
    return np.hstack(offsets)


class CellCalibration:
    """Raking residuals for the cell path: the PSU totals of calibrated influence values
    are ``A - PW a``, with ``A`` the cell totals computed with the raked weights, ``PW``
    the PSU x margin-cell sums of those weights and ``a`` the margin-cell offsets that
    ``Design`` backfits from unweighted sums of ``z / w``. Those sums are linear in the
    unweighted numerator and denominator sums of each (group, margin cell), where a group
    (a region) lies in one domain of every domain set; and the variance needs, per
    stratum, only ``sum A``, ``sum A^2``, ``sum A PW a`` (over the PSU x domain pairs)
    and the quadratic form ``a' (sum PW PW') a``. No ``domains x PSUs`` matrix is formed.

    ``margins`` are the per-row codes of :class:`CalibrationInfo` (kind ``"rake"``).
    """

    def __init__(
        self,
        design: CellDesign,
        row_psu: np.ndarray,
        row_group: np.ndarray,
        weight: np.ndarray,
        margins: tuple[np.ndarray, ...],
    ) -> None:
        self.design = design
        self.row_group = row_group.astype(np.int64)
        self.n_groups = int(self.row_group.max(initial=0)) + 1
        self.codes: list[np.ndarray] = []
        for m in margins:
            _, codes = np.unique(np.asarray(m), return_inverse=True)
            self.codes.append(codes.astype(np.int64).ravel())
        self.counts = [np.bincount(c).astype(float) for c in self.codes]
        n = len(weight)
        self.cross = [
            [
                sparse.csr_matrix((np.ones(n), (a, b)), shape=(len(ca), len(cb)))
                for b, cb in zip(self.codes, self.counts, strict=True)
            ]
            for a, ca in zip(self.codes, self.counts, strict=True)
        ]
        sizes = [len(c) for c in self.counts]
        self.starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        self.g = int(sum(sizes))
        n_psu = len(design.psu_stratum)
        rows = np.concatenate([row_psu] * len(self.codes))
        cols = np.concatenate([c + s for c, s in zip(self.codes, self.starts, strict=True)])
        self.pw = sparse.csr_matrix(
            (np.tile(weight, len(self.codes)), (rows, cols)), shape=(n_psu, self.g)
        )
        self.pw.sum_duplicates()
        h = design.n_strata
        strata = sparse.csr_matrix(
            (np.ones(n_psu), (design.psu_stratum, np.arange(n_psu))), shape=(h, n_psu)
        )
        self.strata = strata
        self.s = np.asarray((strata @ self.pw).todense())  # (H, G)
        dense = self.pw.toarray()
        self.m = np.zeros((h, self.g, self.g))
        order = np.argsort(design.psu_stratum, kind="stable")
        bounds = np.searchsorted(design.psu_stratum[order], np.arange(h + 1))
        for stratum in range(h):
            block = dense[order[bounds[stratum] : bounds[stratum + 1]]]
            self.m[stratum] = block.T @ block
        self._pair_matrices: dict[int, tuple[Pairs, sparse.csr_matrix]] = {}

    def group_sums(
        self, num: np.ndarray, den: np.ndarray | None
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Unweighted sums of the valid numerators and denominators per (group, margin
        cell), one ``(n_groups, cells)`` array per margin: one indicator's input."""
        valid = ~np.isnan(num) if den is None else ~(np.isnan(num) | np.isnan(den))
        x = np.where(valid, num, 0.0)
        d = valid.astype(float) if den is None else np.where(valid, den, 0.0)
        xs, ds = [], []
        for codes, count in zip(self.codes, self.counts, strict=True):
            size = len(count)
            key = self.row_group * size + codes
            xs.append(np.bincount(key, weights=x, minlength=self.n_groups * size))
            ds.append(np.bincount(key, weights=d, minlength=self.n_groups * size))
        shapes = [(self.n_groups, len(c)) for c in self.counts]
        return (
            [v.reshape(s) for v, s in zip(xs, shapes, strict=True)],
            [v.reshape(s) for v, s in zip(ds, shapes, strict=True)],
        )

    def _by_domain(self, values: list[np.ndarray], group_domain: np.ndarray, k: int) -> list:
        inside = group_domain >= 0
        out = []
        for v in values:
            agg = np.zeros((k, v.shape[1]))
            np.add.at(agg, group_domain[inside], v[inside])
            out.append(agg)
        return out

    def _pair_matrix(self, pairs: Pairs, k: int) -> sparse.csr_matrix:
        """Per PSU x domain pair, its PSU's margin-cell weights placed in its domain's
        block of columns: ``(pairs, k * G)``, so ``B = P @ a.ravel()``."""
        key = id(pairs)
        cached = self._pair_matrices.get(key)
        if cached is None or cached[0] is not pairs:  # an id is reused once its object is gone
            rows = self.pw[pairs.psu]
            shift = np.repeat(pairs.domain * self.g, np.diff(rows.indptr))
            matrix = sparse.csr_matrix(
                (rows.data, rows.indices + shift, rows.indptr), shape=(len(pairs.psu), k * self.g)
            )
            # the pairs are kept with their matrix, so their id stays theirs
            cached = self._pair_matrices[key] = (pairs, matrix)
        return cached[1]

    def correct(
        self,
        s1: np.ndarray,
        s2: np.ndarray,
        pairs: Pairs,
        pair_totals: np.ndarray,
        a: np.ndarray,
        k: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per (domain, stratum) sums of ``T = A - PW a`` and ``T^2`` from those of ``A``."""
        b = self._pair_matrix(pairs, k) @ a.ravel()
        idx = pairs.domain * self.design.n_strata + self.design.psu_stratum[pairs.psu]
        cross = np.bincount(idx, weights=pair_totals * b, minlength=k * self.design.n_strata)
        quad = np.einsum("kg,hgf,kf->kh", a, self.m, a)
        return s1 - a @ self.s.T, s2 - 2 * cross.reshape(k, -1) + quad

    def offsets_ratio(
        self, groups, group_domain: np.ndarray, k: int, r: np.ndarray, td: np.ndarray
    ) -> np.ndarray:
        """Offsets for ``z / w = (x - R d) / D`` within each domain."""
        gx = self._by_domain(groups[0], group_domain, k)
        gd = self._by_domain(groups[1], group_domain, k)
        c1 = 1 / np.where(td != 0, td, 1.0)
        c2 = -np.nan_to_num(r) * c1
        base = [c1[:, None] * x + c2[:, None] * d for x, d in zip(gx, gd, strict=True)]
        return _backfit(base, self.cross, self.counts)

    def offsets_versus(
        self,
        groups,
        group_domain: np.ndarray,
        k: int,
        coef: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    ) -> np.ndarray:
        """Offsets for "domain minus rest": ``q/w - alpha x + beta d`` with ``q/w`` linear
        in the domain's ``x`` and ``d`` (coefficients ``cx``, ``cd``)."""
        cx, cd, alpha, beta = coef
        gx = self._by_domain(groups[0], group_domain, k)
        gd = self._by_domain(groups[1], group_domain, k)
        base = [
            cx[:, None] * x
            + cd[:, None] * d
            - alpha[:, None] * ax.sum(0)
            + beta[:, None] * ad.sum(0)
            for x, d, ax, ad in zip(gx, gd, groups[0], groups[1], strict=True)
        ]
        return _backfit(base, self.cross, self.counts)

    def weighted_by_psu(self, values: np.ndarray) -> np.ndarray:
        """Per stratum, ``sum_p values_p PW_p``: shape ``(H, G)``."""
        return np.asarray((self.strata @ self.pw.multiply(values[:, None]).tocsr()).todense())
