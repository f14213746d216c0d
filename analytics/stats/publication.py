"""Publication rules of a cell: which estimates may be published, which to read with care.

The NCHS data presentation standards for proportions (Parker et al. 2017), with the
disclosure rule of the survey: a cell is suppressed when n or the effective n is below 30,
the Korn-Graubard interval is 30 points wide or more, or wider than 5 points and more than
1.3 times the estimate (proportions), the relative standard error is 30% or more (indices
and indirect prevalences; not differences such as the under-reporting gap, whose relative
error says nothing of its precision), or fewer than 10 respondents are in the numerator or
denominator. Fewer than 8 degrees of freedom flag the cell for review, and so does an
estimate of a prevalence outside [0, 1] (indirect designs can give one: it is reported as is). Codes only; their texts are in `analytics.computation`.
"""

from __future__ import annotations

import numpy as np

SUPPRESSION_CODES = (
    "n<30",
    "n_eff<30",
    "ci_width>=30",
    "relative_ci_width>130%",
    "rse>=30%",
    "disclosure<10",
    "complementary",
    "no_data",
)
REVIEW_CODES = ("df<8", "outside[0,1]")


def publication(
    *,
    kind: str,
    estimate: float,
    se: float,
    ci_low: float,
    ci_high: float,
    n: int,
    n_numerator: int,
    n_eff: float,
    df: float,
    bounded: bool = False,
) -> tuple[list[str], list[str]]:
    """Suppression reasons and review flags of one cell (NCHS presentation standards)."""
    reasons: list[str] = []
    if n == 0 or not np.isfinite(estimate):
        return ["no_data"], []
    if n < 30:
        reasons.append("n<30")
    if not np.isfinite(n_eff) or n_eff < 30:
        reasons.append("n_eff<30")
    if kind == "proportion":
        width = ci_high - ci_low
        if not np.isfinite(width) or width >= 0.30:
            reasons.append("ci_width>=30")
        elif width > 0.05 and (estimate <= 0 or width / estimate > 1.30):
            reasons.append("relative_ci_width>130%")
    elif kind != "difference" and (
        estimate == 0 or not np.isfinite(se) or se / abs(estimate) >= 0.30
    ):
        reasons.append("rse>=30%")
    if n < 10 or n_numerator < 10:
        reasons.append("disclosure<10")
    flags = ["df<8"] if not np.isfinite(df) or df < 8 else []
    if bounded and not 0.0 <= estimate <= 1.0:
        flags.append("outside[0,1]")
    return reasons, flags
