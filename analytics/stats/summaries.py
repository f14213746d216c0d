"""Weighted question summaries: the distribution of every closed question's answers.

For a select_one question each answer code, "don't know" (-1) and "refused" (-2) among them,
gets its weighted share of the people the question was put to, with a design-based SE and
interval; "not applicable" (-3) and "not asked" (-9) leave the base, as they do for the
indicators (DOMAIN.md). For a select_multiple question each option gets the share of the
people who answered the question that chose it (so the shares may add up to more than 1).

Every share is a domain mean of a 0/1 variable on the full design (R ``svymean`` /
``svyby`` with ``na.rm = TRUE`` on ``I(q == code)``), so domains (a breakdown such as sex or
region) keep every PSU, and the intervals are Korn-Graubard as for the indicators.

Plain numpy/pandas over a :class:`~analytics.stats.estimation.Design`, no Django.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analytics.stats.estimation import Design

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
