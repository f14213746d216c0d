"""Weighted question summaries: the distribution of every closed question's answers.

For a select_one question each answer code, "don't know" (-1) and "refused" (-2) among them,
gets its weighted share of the people the question was put to, with a design-based SE and
interval; "not applicable" (-3) and "not asked" (-9) leave the base, as they do for the
indicators (DOMAIN.md). For a select_multiple question each option gets the share of the
people who answered the question that chose it (so the shares may add up to more than 1).

Every share is a domain mean of a 0/1 variable on the full design (R ``svymean`` /
``svyby`` with ``na.rm = TRUE`` on ``I(q == code)``), so domains (a breakdown such as sex or
region) keep every PSU, and the intervals are Korn-Graubard as for the indicators.

:func:`shares` is the fast path for a whole questionnaire: every answer of every question
(each an "item": a 0/1 answer with its base) and every domain at once, from bincounts over
the hits and the base rows, with the same linearisation as :meth:`Design.mean` one share at
a time (``single_choice`` and ``multiple_choice``, kept as the reference checked against R).

Plain numpy/pandas over a :class:`~analytics.stats.estimation.Design`, no Django.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analytics.stats.estimation import RAKING_BACKFIT_ITERATIONS, Design, intervals

NOT_IN_BASE = (-3, -9)
COLUMNS = [
    "domain",
    "code",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "n",
    "n_base",
    "n_eff",
    "df",
    "deff",
]
SHARE_FIELDS = ("estimate", "se", "ci_low", "ci_high", "n", "n_base", "n_eff", "df", "deff")
# Estimates x PSUs per pass of `shares`: bounds its memory (8 bytes a cell, a few arrays).
CHUNK_CELLS = 2_000_000


def single_choice(
    design: Design,
    values: np.ndarray,
    codes: Sequence[int],
    *,
    domain_codes: np.ndarray | None = None,
    n_domains: int | None = None,
) -> pd.DataFrame:
    """Shares of each code of a select_one question (NaN: no answer stored).

    ``codes`` lists the codes to report, special codes included where the question offers
    them. Returns one row per (domain, code): ``estimate`` (share), ``se``, ``ci_low``,
    ``ci_high``, ``n`` (people who gave that code), ``n_base`` (people in the base) and, for
    the publication rules, ``n_eff``, ``df`` and ``deff`` of the share.
    """
    values = np.asarray(values, dtype=float)
    in_base = ~np.isnan(values) & ~np.isin(values, NOT_IN_BASE)
    return _shares(
        design,
        {code: np.where(in_base, values == code, np.nan) for code in codes},
        in_base,
        domain_codes,
        n_domains,
    )


def multiple_choice(
    design: Design,
    chosen: dict[int | str, np.ndarray],
    answered: np.ndarray,
    *,
    domain_codes: np.ndarray | None = None,
    n_domains: int | None = None,
) -> pd.DataFrame:
    """Share of respondents choosing each option of a select_multiple question.

    ``chosen`` maps each option to a boolean array (the option was ticked); ``answered`` is
    True for the people who answered the question at all (the base).
    """
    answered = np.asarray(answered, dtype=bool)
    return _shares(
        design,
        {
            code: np.where(answered, np.asarray(ticked, dtype=bool), np.nan)
            for code, ticked in chosen.items()
        },
        answered,
        domain_codes,
        n_domains,
    )


def _shares(
    design: Design,
    indicators: dict[int | str, np.ndarray],
    in_base: np.ndarray,
    domain_codes: np.ndarray | None,
    n_domains: int | None,
) -> pd.DataFrame:
    frames = []
    for code, y in indicators.items():
        y = y.astype(float)
        out = design.mean(y, domain_codes=domain_codes, n_domains=n_domains, ci="korn-graubard")
        if "domain" not in out:
            out["domain"] = 0
        out["code"] = code
        out["n_base"] = out["n"]
        # ``n`` of the mean counts the base; the people who gave this code:
        out["n"] = _counts(y == 1, design, domain_codes, len(out))
        frames.append(out)
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.concat(frames, ignore_index=True)
    return table[COLUMNS].sort_values(["domain"], kind="stable").reset_index(drop=True)


def _counts(hit: np.ndarray, design: Design, domain_codes: np.ndarray | None, k: int) -> np.ndarray:
    positive = hit & (design.weight > 0)
    if domain_codes is None:
        return np.array([int(positive.sum())])
    codes = np.asarray(domain_codes, dtype=np.int64)
    inside = codes >= 0
    return np.bincount(codes[inside & positive], minlength=k)[:k]


def single_choice_items(values: np.ndarray, codes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The items of a select_one question for `shares`: per code, who gave it (``hits``,
    shape ``(len(codes), n)``), and who is in the base (shape ``(n,)``, every code's)."""
    values = np.asarray(values, dtype=float)
    in_base = ~np.isnan(values) & ~np.isin(values, NOT_IN_BASE)
    hits = values[None, :] == np.asarray(list(codes), dtype=float)[:, None]
    return hits & in_base, in_base


def multiple_choice_items(
    chosen: Sequence[np.ndarray], answered: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The items of a select_multiple question for `shares`: per option, who ticked it
    among those who answered the question (the base)."""
    answered = np.asarray(answered, dtype=bool)
    hits = np.array([np.asarray(ticked, dtype=bool) for ticked in chosen], dtype=bool)
    hits = hits.reshape(len(chosen), answered.size)
    return hits & answered, answered


def shares(
    design: Design,
    hits: np.ndarray,
    base: np.ndarray,
    *,
    base_of: np.ndarray | None = None,
    domain_codes: np.ndarray | None = None,
    n_domains: int | None = None,
    level: float = 0.95,
) -> dict[str, np.ndarray]:
    """The share of each item (a row of ``hits``, shape ``(m, n)``) among the rows of its
    base, in the whole sample or in each domain, all at once.

    ``base`` holds one row per item, or one row per question with ``base_of`` giving each
    item's row (the answers of a question share its base). The same estimator as
    ``design.mean(np.where(base[j], hits[j], nan), domain_codes=..., ci="korn-graubard")``
    for every item j (and the counts of `single_choice`): returns arrays of shape ``(k, m)``
    (k = 1 without domains) for each of `SHARE_FIELDS`.

    The influence values of item j in domain g, ``w (x - r) / W`` over its base, are linear
    in two sums, so every PSU total (and calibration cell total) is ``(A - r B) / W`` with
    ``A`` the weight of the item's hits and ``B`` that of its base in the PSU: a bincount over
    the hits and one over the base rows, never a pass per item and row. PSU totals are
    formed for a few items at a time (at most `CHUNK_CELLS` estimates x PSUs).
    """
    hits = np.asarray(hits, dtype=bool)
    base = np.asarray(base, dtype=bool)
    m = hits.shape[0]
    base_of = np.arange(m) if base_of is None else np.asarray(base_of, dtype=np.int64)
    if hits.shape != (m, design.n_rows) or base.shape[1:] != (design.n_rows,):
        raise ValueError("hits and base must be items x rows of the design")
    if base_of.shape != (m,) or (m and not 0 <= base_of.min() <= base_of.max() < len(base)):
        raise ValueError("base_of must give each item a row of base")
    codes, k = design._domains(domain_codes, n_domains)
    w = design.weight
    valid = base & (codes >= 0)
    # (base row, row) pairs in the base and in a domain; (item, row) pairs of hits there.
    base_row, base_at = np.nonzero(valid)
    item, hit_at = np.nonzero(hits)
    keep = valid[base_of[item], hit_at]
    item, hit_at = item[keep], hit_at[keep]
    n_base = len(base)
    base_key = base_row * k + codes[base_at]
    item_key = item * k + codes[hit_at]
    tot_w = np.bincount(base_key, weights=w[base_at], minlength=n_base * k).reshape(n_base, k)
    n_in = np.bincount(base_key, weights=w[base_at] != 0, minlength=n_base * k)
    tot_x = np.bincount(item_key, weights=w[hit_at], minlength=m * k).reshape(m, k)
    hit_n = np.bincount(item_key, weights=w[hit_at] > 0, minlength=m * k).reshape(m, k)
    tot_w, n = tot_w[base_of], n_in.reshape(n_base, k)[base_of]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = tot_x / tot_w
        r0 = np.nan_to_num(r)
        denominator = np.where(tot_w != 0, tot_w, 1.0)
        var = np.empty((m, k))
        step = max(1, CHUNK_CELLS // max(k * design.n_psu, 1))
        base_starts = np.searchsorted(base_row, np.arange(n_base + 1))
        item_starts = np.searchsorted(item, np.arange(m + 1))
        for j0 in range(0, m, step):
            j1 = min(m, j0 + step)
            b0, b1 = int(base_of[j0:j1].min()), int(base_of[j0:j1].max()) + 1
            hs, bs = (
                slice(item_starts[j0], item_starts[j1]),
                slice(base_starts[b0], base_starts[b1]),
            )
            pieces = _Pieces(design, k, item_key[hs] - j0 * k, hit_at[hs], base_key[bs] - b0 * k)
            pieces.base_at = base_at[bs]
            scale = (r0[j0:j1, :, None], denominator[j0:j1, :, None], base_of[j0:j1] - b0)
            totals = _psu_totals(design, pieces, j1 - j0, b1 - b0, scale)
            var[j0:j1] = design._variance(totals).reshape(j1 - j0, k)
        var = np.where(var < (1e-12 * np.abs(r0)) ** 2, 0.0, var)
        se = np.sqrt(var)
        dbar = tot_w / tot_w
        ss = (1 - r0) ** 2 * tot_x + r0**2 * (tot_w - tot_x)  # sum of w (x - r)^2
        v_srs = ss / tot_w / dbar**2 / (n - 1)
        deff = var / v_srs
        n_eff = np.where(deff == 0, n, n / deff)
    se = np.where(np.isfinite(r), se, np.nan)
    df = np.full((m, k), float(design.df))
    low, high = intervals(r, se, df, n, "korn-graubard", level)
    out = {
        "estimate": r,
        "se": se,
        "ci_low": low,
        "ci_high": high,
        "n": hit_n.astype(np.int64),
        "n_base": n.astype(np.int64),
        "n_eff": n_eff,
        "df": df,
        "deff": deff,
    }
    return {name: np.asarray(values).reshape(m, k).T for name, values in out.items()}


class _Pieces:
    """The hits (item key, row) and base rows (base key, row) of a chunk of items."""

    def __init__(
        self, design: Design, k: int, item_key: np.ndarray, hit_at: np.ndarray, base_key: np.ndarray
    ) -> None:
        self.k = k
        self.item_key, self.hit_at, self.base_key = item_key, hit_at, base_key
        self.base_at = np.empty(0, dtype=np.int64)
        self.weight = design.weight

    def sums(self, group: np.ndarray, n_groups: int, m: int, nb: int, weighted: bool) -> tuple:
        """Per (item, domain, group) the weight (or count) of hits, and per (base, domain,
        group) that of the base, for a row grouping (PSU, calibration cell)."""
        w = self.weight
        a = np.bincount(
            self.item_key * n_groups + group[self.hit_at],
            weights=w[self.hit_at] if weighted else None,
            minlength=m * self.k * n_groups,
        ).reshape(m, self.k, n_groups)
        b = np.bincount(
            self.base_key * n_groups + group[self.base_at],
            weights=w[self.base_at] if weighted else None,
            minlength=nb * self.k * n_groups,
        ).reshape(nb, self.k, n_groups)
        return a, b


def _psu_totals(design: Design, pieces: _Pieces, m: int, nb: int, scale: tuple) -> np.ndarray:
    """PSU totals ``(m * k, n_psu)`` of the chunk's influence values, calibration residuals
    included as `Design._psu_totals` forms them."""
    r, denominator, base_index = scale
    k = pieces.k

    def linear(group: np.ndarray, n_groups: int, weighted: bool = True) -> np.ndarray:
        a, b = pieces.sums(group, n_groups, m, nb, weighted)
        return ((a - r * b[base_index]) / denominator).reshape(m * k, n_groups)

    totals = linear(design.psu_code, design.n_psu)
    calibration = design.calibration
    if calibration is None:
        return totals
    margins = design._margins
    if calibration.kind == "poststratify":
        (mg,) = margins
        cell_w = np.bincount(mg.codes, weights=design.weight, minlength=mg.n_cells)
        means = linear(mg.codes, mg.n_cells) / cell_w
        return totals - (mg.psu_weight @ means.T).T
    # Raking, as `Design._psu_totals`: u = z / w, whose cell sums are linear in counts.
    sums = [linear(mg.codes, mg.n_cells, weighted=False) for mg in margins]
    offsets = [np.zeros((m * k, mg.n_cells)) for mg in margins]
    for _ in range(RAKING_BACKFIT_ITERATIONS):
        for i, mg in enumerate(margins):
            cell_sum = sums[i].copy()
            for j in range(len(margins)):
                cell_sum -= (design._cross[i][j] @ offsets[j].T).T
            offsets[i] += cell_sum / mg.counts
    for mg, a in zip(margins, offsets, strict=True):
        totals = totals - (mg.psu_weight @ a.T).T
    return totals
