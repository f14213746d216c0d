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
(each an "item": a 0/1 answer with its base) and every domain in a few numpy passes over an
items x rows matrix, with the same linearisation as :meth:`Design.mean` one share at a time
(``single_choice`` and ``multiple_choice``, kept as the reference checked against R).

Plain numpy/pandas over a :class:`~analytics.stats.estimation.Design`, no Django.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analytics.stats.estimation import Design, intervals

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
# Items x rows per pass of `shares`: bounds its memory (a few bytes per cell and pass).
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
    shape ``(len(codes), n)``) and who is in the base (the same row for every code)."""
    values = np.asarray(values, dtype=float)
    in_base = ~np.isnan(values) & ~np.isin(values, NOT_IN_BASE)
    hits = values[None, :] == np.asarray(list(codes), dtype=float)[:, None]
    return hits & in_base, np.broadcast_to(in_base, hits.shape)


def multiple_choice_items(
    chosen: Sequence[np.ndarray], answered: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The items of a select_multiple question for `shares`: per option, who ticked it
    among those who answered the question (the base)."""
    answered = np.asarray(answered, dtype=bool)
    hits = np.array([np.asarray(ticked, dtype=bool) for ticked in chosen], dtype=bool)
    hits = hits.reshape(len(chosen), answered.size)
    return hits & answered, np.broadcast_to(answered, hits.shape)


def shares(
    design: Design,
    hits: np.ndarray,
    base: np.ndarray,
    *,
    domain_codes: np.ndarray | None = None,
    n_domains: int | None = None,
    level: float = 0.95,
) -> dict[str, np.ndarray]:
    """The share of each item (a row of ``hits``, shape ``(m, n)``, among the rows of its
    ``base``) in the whole sample or in each domain, all at once.

    The same estimator as ``design.mean(np.where(base[j], hits[j], nan), domain_codes=...,
    ci="korn-graubard")`` for every item j (and the counts of `single_choice`): returns
    arrays of shape ``(k, m)`` (k = 1 without domains) for each of `SHARE_FIELDS`.
    Items are taken in chunks of at most `CHUNK_CELLS` items x rows.
    """
    hits = np.asarray(hits, dtype=bool)
    base = np.asarray(base, dtype=bool)
    m = hits.shape[0]
    if hits.shape != (m, design.n_rows) or base.shape != hits.shape:
        raise ValueError("hits and base must be items x rows of the design")
    codes, k = design._domains(domain_codes, n_domains)
    step = max(1, CHUNK_CELLS // max(design.n_rows, 1))
    parts = [
        _chunk(design, hits[start : start + step], base[start : start + step], codes, k, level)
        for start in range(0, m, step)
    ]
    if not parts:
        return {name: np.zeros((k, 0)) for name in SHARE_FIELDS}
    return {name: np.concatenate([p[name] for p in parts], axis=1) for name in SHARE_FIELDS}


def _chunk(
    design: Design, hits: np.ndarray, base: np.ndarray, codes: np.ndarray, k: int, level: float
) -> dict[str, np.ndarray]:
    """`shares` of a few items: estimate j*k + g is item j in domain g."""
    m = hits.shape[0]
    n_est = m * k
    w = design.weight
    valid = base & (codes >= 0)
    est_code = np.where(valid, np.arange(m)[:, None] * k + codes, -1)
    bucket = np.where(est_code >= 0, est_code, n_est).ravel()
    x = (hits & valid).astype(float)

    def total(values: np.ndarray) -> np.ndarray:
        flat = np.broadcast_to(values, x.shape).ravel()
        return np.bincount(bucket, weights=flat, minlength=n_est + 1)[:n_est]

    tot_x = total(w * x)
    tot_w = total(np.where(valid, w, 0.0))
    n = total((w != 0) & valid)
    hit_n = total((w > 0) & (x == 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = tot_x / tot_w
        r_ext = np.append(np.nan_to_num(r), 0.0)
        d_ext = np.append(np.where(tot_w != 0, tot_w, 1.0), 1.0)
        resid = x - r_ext[bucket].reshape(x.shape)
        z = w * resid / d_ext[bucket].reshape(x.shape)
        var = design._variance(design._psu_totals(z, est_code, n_est))
        var = np.where(var < (1e-12 * np.abs(np.nan_to_num(r))) ** 2, 0.0, var)
        se = np.sqrt(var)
        dbar = tot_w / tot_w
        ss = total(np.where(valid, w * resid * resid, 0.0))
        v_srs = ss / tot_w / dbar**2 / (n - 1)
        deff = var / v_srs
        n_eff = np.where(deff == 0, n, n / deff)
    se = np.where(np.isfinite(r), se, np.nan)
    df = np.full(n_est, float(design.df))
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
    return {name: values.reshape(m, k).T for name, values in out.items()}
