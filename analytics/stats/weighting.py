"""Survey weights: calibration to population tables, trimming and diagnostics.

Calibration adjusts base weights so that weighted sample totals reproduce known
population totals: post-stratification for one table of cells (region x urban/rural),
raking (iterative proportional fitting) for several margins at once (sex x age band and
region). Population tables are data: one row per cell with the cell columns and a
``total`` column.

Standard errors must then account for the calibration. The functions here return only
the weights; describe the calibration to the estimator with
:func:`poststratification_info` or :func:`raking_info` and pass the result as
``calibration=`` to :class:`analytics.stats.estimation.Design` or
:func:`analytics.stats.estimation.survey_mean`, which then compute variances from the
calibration residuals as R's ``survey`` package does after ``postStratify()`` and
``rake()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from analytics.stats.estimation import CalibrationInfo

__all__ = [
    "CalibrationInfo",
    "ConvergenceError",
    "kish_deff",
    "poststratification_info",
    "poststratify",
    "rake",
    "raking_info",
    "trim_weights",
    "weight_summary",
]

MarginKey = str | tuple[str, ...]


class ConvergenceError(RuntimeError):
    """Raking stopped at ``max_iter`` before the margins matched; ``gap`` is the largest
    relative difference between a weighted margin and its population total."""

    def __init__(self, message: str, *, gap: float) -> None:
        super().__init__(message)
        self.gap = gap


def _columns(key: MarginKey) -> list[str]:
    return [key] if isinstance(key, str) else list(key)


def _cell_codes(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer cell code per row and the table of observed cells (sorted)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in the frame: {missing}")
    if frame[list(columns)].isna().any().any():
        raise ValueError(f"missing values in calibration columns {list(columns)}")
    grouped = frame.groupby(list(columns), sort=True)
    codes = grouped.ngroup().to_numpy()
    cells = grouped.size().reset_index()[list(columns)]
    return codes, cells


def _population_totals(
    cells: pd.DataFrame, population: pd.DataFrame | pd.Series, columns: list[str], what: str
) -> np.ndarray:
    """Population total for each observed cell, with clear errors for mismatches."""
    if isinstance(population, pd.Series):
        pop = population.rename("total").reset_index()
        pop.columns = [*columns, "total"]
    else:
        pop = population
    absent = [c for c in [*columns, "total"] if c not in pop.columns]
    if absent:
        raise ValueError(f"population table for {what} lacks columns {absent}")
    pop = pop[[*columns, "total"]]
    if pop.duplicated(columns).any():
        raise ValueError(f"population table for {what} has duplicate cells")
    # Align dtypes so that 1 and "1" or 1 and 1.0 do not silently fail to match.
    pop = pop.astype({c: cells[c].dtype for c in columns}, errors="ignore")
    merged = cells.merge(pop, on=columns, how="outer", indicator=True)
    no_pop = merged[merged["_merge"] == "left_only"]
    if len(no_pop):
        listed = no_pop[columns].head(10).to_dict("records")
        raise ValueError(f"sample cells missing from the population table for {what}: {listed}")
    no_sample = merged[(merged["_merge"] == "right_only") & (merged["total"] > 0)]
    if len(no_sample):
        listed = no_sample[columns].head(10).to_dict("records")
        raise ValueError(
            f"population cells with no sample for {what} (collapse them first): {listed}"
        )
    totals = cells.merge(pop, on=columns, how="left")["total"].to_numpy(dtype=float)
    if not np.isfinite(totals).all() or (totals < 0).any():
        raise ValueError(f"population totals for {what} must be finite and non-negative")
    return totals


def _base_weights(frame: pd.DataFrame, weight: str) -> np.ndarray:
    w = frame[weight].to_numpy(dtype=float)
    if not np.isfinite(w).all() or (w <= 0).any():
        raise ValueError("base weights must be finite and positive")
    return w


def poststratify(
    frame: pd.DataFrame,
    *,
    weight: str,
    cells: list[str],
    population: pd.DataFrame,
) -> pd.Series:
    """Post-stratified weights: within each cell, base weights are scaled to the
    population total of that cell (``population`` has the ``cells`` columns and
    ``total``). Raises ``ValueError`` when a sample cell is absent from the population
    table or a population cell (with a positive total) has no sample.
    """
    w = _base_weights(frame, weight)
    codes, observed = _cell_codes(frame, cells)
    totals = _population_totals(observed, population, list(cells), "+".join(cells))
    sample = np.bincount(codes, weights=w, minlength=len(observed))
    return pd.Series(w * (totals / sample)[codes], index=frame.index, name=weight)


def rake(
    frame: pd.DataFrame,
    *,
    weight: str,
    margins: Mapping[MarginKey, pd.DataFrame | pd.Series],
    tol: float = 1e-8,
    max_iter: int = 100,
    trim: tuple[float, float] | None = None,
    trim_mode: Literal["ratio", "absolute"] = "ratio",
) -> pd.Series:
    """Raked weights by iterative proportional fitting to several population margins.

    ``margins`` maps a column name (or a tuple of columns, for a crossed margin such as
    sex x age band) to its population totals: a Series indexed by the cell values or a
    DataFrame with the columns and ``total``. All margins must share the same grand
    total. A sweep post-stratifies to each margin in turn; iteration stops when every
    weighted margin is within ``tol`` (relative) of its total, otherwise
    :class:`ConvergenceError` reports the gap reached after ``max_iter`` sweeps.

    ``trim=(lower, upper)`` bounds the weights during raking (bounded raking): on the
    ratio of raked to base weight (``trim_mode="ratio"``) or on the weight itself
    (``"absolute"``). Bounds that are incompatible with the margins end in
    :class:`ConvergenceError`. Variances after bounded raking are approximate.
    """
    if not margins:
        raise ValueError("rake needs at least one margin")
    w0 = _base_weights(frame, weight)
    codes_list: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for key, population in margins.items():
        columns = _columns(key)
        codes, observed = _cell_codes(frame, columns)
        codes_list.append(codes)
        targets.append(_population_totals(observed, population, columns, "+".join(columns)))
    grand = [t.sum() for t in targets]
    if not np.allclose(grand, grand[0], rtol=1e-6, atol=0):
        raise ValueError(f"margins have different grand totals: {grand}")
    if trim is not None:
        low, high = trim
        if not low <= 1 <= high and trim_mode == "ratio":
            raise ValueError("ratio bounds must include 1")
        lower = low * w0 if trim_mode == "ratio" else np.full_like(w0, low)
        upper = high * w0 if trim_mode == "ratio" else np.full_like(w0, high)

    w = w0.copy()
    gap = np.inf
    for _ in range(max_iter):
        for codes, target in zip(codes_list, targets, strict=True):
            sums = np.bincount(codes, weights=w, minlength=len(target))
            w = w * (target / sums)[codes]
        if trim is not None:
            w = np.clip(w, lower, upper)
        gap = max(
            float(
                np.max(
                    np.abs(np.bincount(c, weights=w, minlength=len(t)) - t) / np.maximum(t, 1e-300)
                )
            )
            for c, t in zip(codes_list, targets, strict=True)
        )
        if gap < tol:
            return pd.Series(w, index=frame.index, name=weight)
    raise ConvergenceError(
        f"raking did not converge in {max_iter} iterations (largest relative gap {gap:.3g})",
        gap=gap,
    )


def trim_weights(
    weights: pd.Series | np.ndarray,
    *,
    lower: float | None = None,
    upper: float | None = None,
    max_iter: int = 50,
) -> pd.Series:
    """Trim weights to ``[lower, upper]`` and redistribute the trimmed amount.

    Weights above ``upper`` are set to ``upper`` (below ``lower`` to ``lower``) and the
    difference is spread over the untrimmed weights in proportion to their size, so
    the total is unchanged. Repeated until no weight is out of bounds. Trimming moves
    weighted margins away from their calibration targets; rake again with ``trim=``
    if the margins must hold exactly.
    """
    series = weights if isinstance(weights, pd.Series) else pd.Series(weights)
    w = series.to_numpy(dtype=float).copy()
    total = w.sum()
    lo = -np.inf if lower is None else lower
    hi = np.inf if upper is None else upper
    if lo > hi:
        raise ValueError("lower bound above upper bound")
    if not lo * len(w) <= total <= hi * len(w):
        raise ValueError("bounds cannot hold the total weight")
    for _ in range(max_iter):
        clipped = np.clip(w, lo, hi)
        fixed = (clipped != w) | (w <= lo) | (w >= hi)
        excess = total - clipped.sum()
        free = ~fixed
        if abs(excess) <= 1e-12 * total or not free.any():
            w = clipped
            break
        clipped[free] *= 1 + excess / clipped[free].sum()
        w = clipped
    else:
        raise ConvergenceError("weight trimming did not converge", gap=float(excess))
    return pd.Series(w, index=series.index, name=series.name)


def kish_deff(weights: pd.Series | np.ndarray) -> float:
    """Kish design effect due to unequal weighting, ``n sum(w^2) / (sum w)^2``."""
    w = np.asarray(weights, dtype=float)
    return float(len(w) * np.sum(w * w) / np.sum(w) ** 2)


def weight_summary(weights: pd.Series | np.ndarray) -> dict[str, float]:
    """Diagnostics of a weight vector: n, total, min, max, max/min ratio, coefficient of
    variation (population form, so ``kish_deff = 1 + cv^2``), Kish deff and Kish
    effective sample size."""
    w = np.asarray(weights, dtype=float)
    deff = kish_deff(w)
    return {
        "n": int(len(w)),
        "total": float(w.sum()),
        "min": float(w.min()),
        "max": float(w.max()),
        "ratio": float(w.max() / w.min()) if w.min() > 0 else float("inf"),
        "cv": float(w.std() / w.mean()),
        "kish_deff": deff,
        "n_eff": float(len(w) / deff),
    }


def poststratification_info(frame: pd.DataFrame, cells: list[str]) -> CalibrationInfo:
    """Calibration description for weights from :func:`poststratify` on ``cells``."""
    codes, _ = _cell_codes(frame, cells)
    return CalibrationInfo("poststratify", (codes,))


def raking_info(
    frame: pd.DataFrame, margins: Mapping[MarginKey, object] | Sequence[MarginKey]
) -> CalibrationInfo:
    """Calibration description for weights from :func:`rake`; ``margins`` is the same
    mapping given to :func:`rake` (only its keys are used) or a list of its keys."""
    keys = list(margins.keys()) if isinstance(margins, Mapping) else list(margins)
    return CalibrationInfo("rake", tuple(_cell_codes(frame, _columns(k))[0] for k in keys))
