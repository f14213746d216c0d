"""The dashboard's breakdown section: one indicator by the groups of a breakdown.

Pure, like `analytics.dashboard`: from plain records of the national group cells to a
chart (the regional comparison chart's shape, with groups in place of regions) and the
table behind it, with each group's difference from everyone outside it. Shares are shown
in per cent; a suppressed group keeps its n and its reasons and has no value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from analytics.dashboard import (
    ComparisonChart,
    Point,
    Series,
    Texts,
    WaveRecord,
    explain_codes,
    scale_for,
)


@dataclass(frozen=True)
class BreakdownRecord:
    """One stored national group cell, as the dashboard reads it (shares as 0..1)."""

    wave_id: int
    group: str
    estimate: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    suppressed: bool = False
    suppression_reason: str = ""
    review_flag: str = ""
    national_estimate: float | None = None
    diff_vs_rest: float | None = None
    diff_vs_rest_p_adjusted: float | None = None


@dataclass(frozen=True)
class BreakdownRow:
    wave: str
    group: str  # label
    estimate: float | None  # scaled
    ci_low: float | None
    ci_high: float | None
    n: int
    suppressed: bool
    review: bool
    reasons: tuple[str, ...]
    review_notes: tuple[str, ...]
    diff_vs_rest: float | None  # scaled
    p_adjusted: float | None


@dataclass(frozen=True)
class BreakdownSection:
    title: str
    chart: ComparisonChart | None  # None: nothing published to draw
    table: tuple[BreakdownRow, ...]
    nothing_to_draw: str  # why the chart is missing ("" when drawn)


def breakdown_section(
    *,
    estimates: Sequence[BreakdownRecord],
    waves: Sequence[WaveRecord],
    groups: Sequence[tuple[str, str]],  # (code, label) in display order
    title: str,
    nothing_to_draw: str,
    texts: Texts,
) -> BreakdownSection:
    scale = scale_for(texts.unit)
    axis = texts.axis_index if texts.unit == "index" else texts.axis_share
    labels: Mapping[str, str] = dict(groups)
    cells = {(e.wave_id, e.group): e for e in estimates}

    def scaled(value: float | None, cell: BreakdownRecord) -> float | None:
        return None if value is None or cell.suppressed else value * scale

    rows: list[BreakdownRow] = []
    series: list[Series] = []
    for wave in waves:
        points = []
        national = None
        for code, label in groups:
            cell = cells.get((wave.id, code))
            if cell is None:
                continue
            review = bool(cell.review_flag) and not cell.suppressed
            national = national if national is not None else cell.national_estimate
            rows.append(
                BreakdownRow(
                    wave=wave.label,
                    group=label,
                    estimate=scaled(cell.estimate, cell),
                    ci_low=scaled(cell.ci_low, cell),
                    ci_high=scaled(cell.ci_high, cell),
                    n=cell.n,
                    suppressed=cell.suppressed,
                    review=review,
                    reasons=explain_codes(cell.suppression_reason, texts.suppression_reasons),
                    review_notes=explain_codes(cell.review_flag, texts.review_flags)
                    if review
                    else (),
                    diff_vs_rest=scaled(cell.diff_vs_rest, cell),
                    p_adjusted=None if cell.suppressed else cell.diff_vs_rest_p_adjusted,
                )
            )
            points.append(
                Point(
                    region=labels[code],
                    estimate=scaled(cell.estimate, cell),
                    ci_low=scaled(cell.ci_low, cell),
                    ci_high=scaled(cell.ci_high, cell),
                    suppressed=cell.suppressed,
                    review=review,
                )
            )
        if points:
            series.append(
                Series(
                    name=wave.label,
                    national=None if national is None else national * scale,
                    points=tuple(points),
                )
            )
    drawable = any(p.estimate is not None for s in series for p in s.points)
    chart = (
        ComparisonChart(
            title=title,
            axis_label=axis,
            regions=tuple(label for _code, label in groups),
            series=tuple(series),
            national_label=texts.national,
            suppressed_label=texts.suppressed,
            review_label=texts.review,
        )
        if drawable
        else None
    )
    return BreakdownSection(
        title=title,
        chart=chart,
        table=tuple(rows),
        nothing_to_draw="" if drawable or not rows else nothing_to_draw,
    )
