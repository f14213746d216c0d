"""The dashboard's numbers: from stored estimates to the sections, charts and tables it shows.

A pure function over plain records (`EstimateRecord`, `WaveRecord`, `RegionRecord`) and
the page's texts (`Texts`, already in the interface language): no ORM, no HTML, no
request, so every number a published table prints is tested with numbers. The view
fetches the records (`analytics.selectors`), calls `dashboard_content` and draws the
charts from the dataclasses returned here (`analytics.charts`).

What it decides:

* Shares are shown in per cent (x100), indices as they are (0 to 100); estimates,
  intervals, tile values, changes and their standard errors are all scaled the same way.
* A suppressed cell keeps its n and its reasons (one entry each) and has no value; a
  cell flagged for review keeps its value and says so.
* National cells are stored once, under the wave's own geography: every wave's national
  value is drawn and tabled in every geography's section.
* A chart with nothing published to draw is not drawn; the section says why instead.
* A region without a change says why: no earlier wave, boundaries changed, or not
  published in one of the two waves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

SHARE_SCALE = 100.0  # shares are stored as 0..1 and shown in per cent


@dataclass(frozen=True)
class WaveRecord:
    id: int
    code: str
    label: str  # what the page calls the wave, in the interface language


@dataclass(frozen=True)
class RegionRecord:
    id: int
    geography: str
    code: str
    name: str  # in the interface language
    tile_row: int
    tile_col: int


@dataclass(frozen=True)
class EstimateRecord:
    """One stored cell, as the dashboard reads it (shares as 0..1)."""

    wave_id: int
    geography: str
    region_id: int | None  # None: the nation
    estimate: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    suppressed: bool = False
    suppression_reason: str = ""  # comma-separated codes
    review_flag: str = ""  # comma-separated codes
    boundary_note: str = ""  # a code, or code:detail
    previous_wave: str = ""  # label of the wave the change is measured from
    previous_estimate: float | None = None
    change: float | None = None
    change_se: float | None = None
    change_p_adjusted: float | None = None


@dataclass(frozen=True)
class Texts:
    """Every text the content carries, already translated. Titles are %-templates."""

    indicator: str
    unit: str  # "share" or "index"
    axis_share: str
    axis_index: str
    axis_change_share: str  # a change of a share, in percentage points
    geographies: Mapping[str, str]  # geography code -> label, in display order
    national: str
    suppressed: str
    review: str
    no_data: str
    not_available: str
    increase: str
    decrease: str
    comparison_title: str  # %(indicator)s %(geography)s
    change_title: str  # %(wave)s %(geography)s
    map_title: str  # %(indicator)s %(wave)s %(geography)s
    nothing_to_draw: str
    no_change_to_draw: str
    no_earlier_wave: str
    not_published_in: str  # %(wave)s
    suppression_reasons: Mapping[str, str]
    review_flags: Mapping[str, str]
    boundary_notes: Mapping[str, str]


@dataclass(frozen=True)
class TableRow:
    wave: str
    region: str
    is_national: bool
    estimate: float | None  # scaled
    ci_low: float | None
    ci_high: float | None
    n: int
    suppressed: bool
    review: bool
    reasons: tuple[str, ...]  # why suppressed, one entry per rule
    review_notes: tuple[str, ...]
    boundary_notes: tuple[str, ...]


@dataclass(frozen=True)
class ChangeRow:
    region: str
    short: str
    previous_wave: str
    change: float | None  # scaled; None when not available
    change_se: float | None
    p_adjusted: float | None
    reason: str  # why not available ("" when available or when no rule explains it)


@dataclass(frozen=True)
class Tile:
    row: int
    col: int
    code: str
    label: str  # short name
    name: str
    estimate: float | None  # scaled
    suppressed: bool
    review: bool


@dataclass(frozen=True)
class Point:
    region: str  # the chart's label of the region
    estimate: float | None  # scaled
    ci_low: float | None
    ci_high: float | None
    suppressed: bool
    review: bool


@dataclass(frozen=True)
class Series:
    name: str
    national: float | None  # scaled
    points: tuple[Point, ...]


@dataclass(frozen=True)
class ComparisonChart:
    title: str
    axis_label: str
    regions: tuple[str, ...]
    series: tuple[Series, ...]
    national_label: str
    suppressed_label: str
    review_label: str


@dataclass(frozen=True)
class ChangeChart:
    title: str
    axis_label: str
    rows: tuple[ChangeRow, ...]
    unavailable_label: str
    increase_label: str
    decrease_label: str


@dataclass(frozen=True)
class TileMap:
    title: str
    tiles: tuple[Tile, ...]
    suppressed_label: str
    no_data_label: str


@dataclass(frozen=True)
class Section:
    geography: str
    label: str
    comparison: ComparisonChart | None  # None: nothing published to draw
    change: ChangeChart | None  # None: no change to draw
    map: TileMap
    table: tuple[TableRow, ...]
    changes: tuple[ChangeRow, ...]  # empty when no wave has an earlier one
    tiles: tuple[Tile, ...]
    nothing_to_draw: str  # why the comparison chart is missing ("" when drawn)
    no_change_to_draw: str  # why the change chart is missing while changes are tabled


@dataclass(frozen=True)
class DashboardContent:
    indicator_label: str
    axis_label: str
    sections: tuple[Section, ...]


def scale_for(unit: str) -> float:
    return 1.0 if unit == "index" else SHARE_SCALE


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def explain_codes(value: str, table: Mapping[str, str]) -> tuple[str, ...]:
    """Texts for a comma-separated list of stored codes (or one ``code:detail``)."""
    out = []
    for item in filter(None, value.split(",") if ":" not in value else [value]):
        code, _sep, detail = item.partition(":")
        text = str(table.get(code.strip(), code.strip()))
        out.append(f"{text} ({detail})" if detail else text)
    return tuple(out)


_GENERIC = re.compile(r"^(?:область\s+)|\s+(?:облысы|область|Region)$", re.IGNORECASE)


def short_names(names: Mapping[int, str]) -> dict[int, str]:
    """Short labels for tiles and chart axes: the name without its generic word
    ("облысы", "область", "Region"), unless that would make two units look alike
    (Almaty Region and the city of Almaty), in which case the full name stays."""
    stripped = {key: _GENERIC.sub("", name).strip() or name for key, name in names.items()}
    out = {}
    for key, short in stripped.items():
        clash = any(other != key and short in (stripped[other], names[other]) for other in names)
        out[key] = names[key] if clash else short
    return out


# Kazakh Cyrillic in its alphabetical order (Russian's letters are in the same order), so
# that Ақмола comes before Атырау, as a reader of either language expects.
ALPHABET = "аәбвгғдеёжзийкқлмнңоөпрстуұүфхһцчшщъыіьэюя"
_RANK = {letter: k for k, letter in enumerate(ALPHABET)}


def name_key(name: str) -> tuple[tuple[int, int], ...]:
    """Sort key of a region's name: Cyrillic by the Kazakh alphabet, after other text."""
    return tuple((1, _RANK[ch]) if ch in _RANK else (0, ord(ch)) for ch in name.lower())


def default_indicator(order: Sequence[str], published: Mapping[str, int]) -> str | None:
    """The first indicator (in catalogue order) with the most published regional cells,
    so a first visit opens on a chart with something on it."""
    if not order:
        return None
    best = max(published.get(code, 0) for code in order)
    return next(code for code in order if published.get(code, 0) == best)


def dashboard_content(
    *,
    estimates: Iterable[EstimateRecord],
    waves: Sequence[WaveRecord],
    regions: Iterable[RegionRecord],
    texts: Texts,
) -> DashboardContent:
    """The sections of the dashboard, one per geography with regional cells."""
    scale = scale_for(texts.unit)
    axis = texts.axis_index if texts.unit == "index" else texts.axis_share
    change_axis = texts.axis_index if texts.unit == "index" else texts.axis_change_share
    cells = list(estimates)
    wave_order = {w.id: k for k, w in enumerate(waves)}
    cells = [c for c in cells if c.wave_id in wave_order]
    national = {c.wave_id: c for c in cells if c.region_id is None}
    all_regions = list(regions)
    sections = []
    for geography, geo_label in texts.geographies.items():
        regional = [c for c in cells if c.geography == geography and c.region_id is not None]
        if not regional:
            continue
        in_geography = [r for r in all_regions if r.geography == geography]
        shorts = short_names({r.id: r.name for r in in_geography})
        # by the distinctive part of the name (Абай for "область Абай"), as the charts show it
        geo_regions = sorted(in_geography, key=lambda r: (name_key(shorts[r.id]), r.code))
        by_region = {r.id: r for r in geo_regions}
        geo_waves = [w for w in waves if any(c.wave_id == w.id for c in regional)]
        sections.append(
            _section(
                geography=geography,
                label=geo_label,
                regional=regional,
                national=national,
                geo_waves=geo_waves,
                regions=geo_regions,
                by_region=by_region,
                shorts=shorts,
                scale=scale,
                axis=axis,
                change_axis=change_axis,
                texts=texts,
            )
        )
    return DashboardContent(
        indicator_label=texts.indicator, axis_label=axis, sections=tuple(sections)
    )


def _section(
    *,
    geography: str,
    label: str,
    regional: list[EstimateRecord],
    national: dict[int, EstimateRecord],
    geo_waves: list[WaveRecord],
    regions: list[RegionRecord],
    by_region: dict[int, RegionRecord],
    shorts: dict[int, str],
    scale: float,
    axis: str,
    change_axis: str,
    texts: Texts,
) -> Section:
    def review(cell: EstimateRecord) -> bool:
        return bool(cell.review_flag) and not cell.suppressed

    def value(cell: EstimateRecord | None, name: str) -> float | None:
        if cell is None or cell.suppressed:
            return None
        return _scaled(getattr(cell, name), scale)

    table: list[TableRow] = []
    series: list[Series] = []
    for wave in geo_waves:
        order = {r.id: k for k, r in enumerate(regions)}
        wave_cells = sorted(
            (c for c in regional if c.wave_id == wave.id and c.region_id in by_region),
            key=lambda c: order[c.region_id],  # type: ignore[index]
        )
        nation = national.get(wave.id)
        for cell in ([nation] if nation else []) + wave_cells:
            region = by_region.get(cell.region_id) if cell.region_id is not None else None
            table.append(
                TableRow(
                    wave=wave.label,
                    region=region.name if region else texts.national,
                    is_national=region is None,
                    estimate=value(cell, "estimate"),
                    ci_low=value(cell, "ci_low"),
                    ci_high=value(cell, "ci_high"),
                    n=cell.n,
                    suppressed=cell.suppressed,
                    review=review(cell),
                    reasons=explain_codes(cell.suppression_reason, texts.suppression_reasons)
                    if cell.suppressed
                    else (),
                    review_notes=explain_codes(cell.review_flag, texts.review_flags)
                    if not cell.suppressed
                    else (),
                    boundary_notes=explain_codes(cell.boundary_note, texts.boundary_notes),
                )
            )
        series.append(
            Series(
                name=wave.label,
                national=value(nation, "estimate"),
                points=tuple(
                    Point(
                        region=shorts[c.region_id],
                        estimate=value(c, "estimate"),
                        ci_low=value(c, "ci_low"),
                        ci_high=value(c, "ci_high"),
                        suppressed=c.suppressed or c.estimate is None,
                        review=review(c),
                    )
                    for c in wave_cells
                    if c.region_id is not None
                ),
            )
        )
    drawable = any(p.estimate is not None for s in series for p in s.points)
    comparison = (
        ComparisonChart(
            title=texts.comparison_title % {"indicator": texts.indicator, "geography": label},
            axis_label=axis,
            regions=tuple(shorts[r.id] for r in regions),
            series=tuple(series),
            national_label=texts.national,
            suppressed_label=texts.suppressed,
            review_label=texts.review,
        )
        if drawable
        else None
    )

    latest = geo_waves[-1]
    latest_cells = {c.region_id: c for c in regional if c.wave_id == latest.id}
    changes: tuple[ChangeRow, ...] = ()
    if any(c.previous_wave for c in latest_cells.values()):
        changes = tuple(
            _change_row(latest_cells[r.id], r, shorts[r.id], latest, scale, texts)
            for r in regions
            if r.id in latest_cells
        )
    change = (
        ChangeChart(
            title=texts.change_title % {"wave": latest.label, "geography": label},
            axis_label=change_axis,
            rows=changes,
            unavailable_label=texts.not_available,
            increase_label=texts.increase,
            decrease_label=texts.decrease,
        )
        if any(row.change is not None for row in changes)
        else None
    )

    tiles = tuple(
        Tile(
            row=r.tile_row,
            col=r.tile_col,
            code=r.code,
            label=shorts[r.id],
            name=r.name,
            estimate=value(latest_cells.get(r.id), "estimate"),
            suppressed=bool(latest_cells.get(r.id) and latest_cells[r.id].suppressed),
            review=bool(latest_cells.get(r.id) and review(latest_cells[r.id])),
        )
        for r in sorted(regions, key=lambda r: r.code)
    )
    tile_map = TileMap(
        title=texts.map_title
        % {"indicator": texts.indicator, "wave": latest.label, "geography": label},
        tiles=tiles,
        suppressed_label=texts.suppressed,
        no_data_label=texts.no_data,
    )
    return Section(
        geography=geography,
        label=label,
        comparison=comparison,
        change=change,
        map=tile_map,
        table=tuple(table),
        changes=changes,
        tiles=tiles,
        nothing_to_draw="" if comparison else texts.nothing_to_draw,
        no_change_to_draw=texts.no_change_to_draw if changes and change is None else "",
    )


def _change_row(
    cell: EstimateRecord,
    region: RegionRecord,
    short: str,
    wave: WaveRecord,
    scale: float,
    texts: Texts,
) -> ChangeRow:
    reason = ""
    available = cell.change is not None and not cell.suppressed
    if not available:
        if not cell.previous_wave:
            reason = texts.no_earlier_wave
        elif cell.suppressed:
            reason = texts.not_published_in % {"wave": wave.label}
        elif cell.boundary_note.split(":")[0] == "boundary_changed":
            reason = str(texts.boundary_notes.get("boundary_changed", ""))
        elif cell.previous_estimate is None:
            reason = texts.not_published_in % {"wave": cell.previous_wave}
    return ChangeRow(
        region=region.name,
        short=short,
        previous_wave=cell.previous_wave,
        change=_scaled(cell.change, scale) if available else None,
        change_se=_scaled(cell.change_se, scale) if available else None,
        p_adjusted=cell.change_p_adjusted if available else None,
        reason=reason,
    )
