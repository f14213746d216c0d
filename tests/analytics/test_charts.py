"""Charts: accessible SVG, suppressed cells drawn as words (never as zero), hatched tiles,
every wave's national line, hollow markers for estimates to review, a legend for colours."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from analytics import charts
from analytics.dashboard import (
    ChangeChart,
    ChangeRow,
    ComparisonChart,
    Point,
    Series,
    Tile,
    TileMap,
)

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _texts(svg: str) -> list[str]:
    return [t.text or "" for t in _parse(svg).iter(f"{SVG}text")]


def _group(svg: str, gid: str) -> str:
    match = re.search(rf'<g id="{gid}">(.*?)</g>', svg, re.S)
    assert match, gid
    return match.group(1)


def _comparison(series: tuple[Series, ...], regions: tuple[str, ...]) -> ComparisonChart:
    return ComparisonChart(
        title="Пара кең таралған деп санайтындар",
        axis_label="Пайыз",
        regions=regions,
        series=series,
        national_label="Қазақстан",
        suppressed_label="жарияланбайды",
        review_label="жарияламас бұрын тексеру керек",
    )


def test_comparison_chart_is_accessible_and_marks_suppressed_cells():
    chart = _comparison(
        (
            Series(
                name="2026",
                national=50.0,
                points=(
                    Point("Абай", 42.0, 35.0, 50.0, suppressed=False, review=False),
                    Point("Ұлытау", None, None, None, suppressed=True, review=False),
                ),
            ),
        ),
        ("Абай", "Ұлытау"),
    )
    svg = charts.comparison_chart(chart)
    root = _parse(svg)
    assert (
        root.get("role") == "img" and root.get("aria-label") == "Пара кең таралған деп санайтындар"
    )
    assert root.find(f"{SVG}title").text == "Пара кең таралған деп санайтындар"
    texts = _texts(svg)
    assert " жарияланбайды" in texts  # the suppressed region says so, in the page's language
    assert "Ұлытау" in texts and "Қазақстан (2026)" in texts
    # Exactly one estimate marker is drawn: the suppressed cell has none (no dot at zero).
    assert len(re.findall(r'<g id="estimate-', svg)) == 1
    # deterministic output: the same data draw the same bytes
    assert charts.comparison_chart(chart) == svg


def test_comparison_chart_draws_every_waves_national_line_at_its_value():
    def point(value: float) -> Point:
        return Point("A", value, value - 5, value + 5, suppressed=False, review=False)

    chart = _comparison(
        (
            Series(name="2013", national=60.0, points=(point(55.0),)),
            Series(name="2026", national=40.0, points=(point(45.0),)),
        ),
        ("A",),
    )
    svg = charts.comparison_chart(chart)
    assert "Қазақстан (2013)" in _texts(svg) and "Қазақстан (2026)" in _texts(svg)

    def x_of(gid: str) -> float:  # a line's path starts at "M x y"; a marker is <use x=...>
        group = _group(svg, gid)
        found = re.search(r'<use [^>]*\bx="([\d.]+)"', group) or re.search(r"M ([\d.]+) ", group)
        assert found, gid
        return float(found.group(1))

    # each dashed line sits where its value is on the axis: 60 right of 55 right of 45 ...
    assert x_of("national-1") < x_of("estimate-1-0") < x_of("estimate-0-0") < x_of("national-0")


def test_estimates_to_review_are_drawn_hollow_with_a_legend_entry():
    chart = _comparison(
        (
            Series(
                name="2013",
                national=None,
                points=(
                    Point("A", 40.0, 30.0, 50.0, suppressed=False, review=True),
                    Point("B", 60.0, 50.0, 70.0, suppressed=False, review=False),
                ),
            ),
        ),
        ("A", "B"),
    )
    svg = charts.comparison_chart(chart)
    assert len(re.findall(r'<g id="review-', svg)) == 1
    assert "fill: #ffffff" in _group(svg, "review-0-1")
    assert "fill: #ffffff" not in _group(svg, "estimate-0-0")
    assert "жарияламас бұрын тексеру керек" in _texts(svg)


def test_tile_map_hatches_suppressed_regions_and_colours_the_rest():
    tiles = (
        Tile(0, 0, "KZ-10", "Абай", "Абай облысы", 20.0, suppressed=False, review=False),
        Tile(0, 1, "KZ-62", "Ұлытау", "Ұлытау облысы", None, suppressed=True, review=False),
        Tile(1, 0, "KZ-75", "Алматы", "Алматы", 80.0, suppressed=False, review=True),
        Tile(1, 1, "KZ-79", "Шымкент", "Шымкент", None, suppressed=False, review=False),
    )
    svg = charts.tile_map(
        TileMap(title="Карта", tiles=tiles, suppressed_label="скрыто", no_data_label="нет данных")
    )
    root = _parse(svg)
    assert root.get("aria-label") == "Карта"
    texts = _texts(svg)
    for expected in ("Абай", "Ұлытау", "Алматы", "Шымкент", "20", "80*", "скрыто", "нет данных"):
        assert expected in texts
    assert not any(t in texts for t in ("10", "62", "75", "79"))  # names, not ISO codes
    assert svg.count("<pattern") == 1  # the hatch of the one suppressed tile
    fills = set(re.findall(r"fill: (#[0-9a-f]{6})", svg))
    assert len(fills) >= 3  # low, high and the no-data grey differ


def test_long_tile_names_break_onto_two_lines():
    assert charts._tile_label("Солтүстік Қазақстан") == "Солтүстік\nҚазақстан"
    assert charts._tile_label("Западно-Казахстанская") == "Западно-\nКазахстанская"
    assert charts._tile_label("Абай") == "Абай"


def _change(rows: tuple[ChangeRow, ...]) -> str:
    return charts.change_chart(
        ChangeChart(
            title="Өзгеріс",
            axis_label="пункт",
            rows=rows,
            unavailable_label="қолжетімсіз",
            increase_label="өсу",
            decrease_label="төмендеу",
        )
    )


def test_change_chart_has_a_legend_and_says_why_a_change_is_missing():
    svg = _change(
        (
            ChangeRow("A обл.", "A", "2013", -5.0, 2.0, 0.04, reason=""),
            ChangeRow("B обл.", "B", "2013", 3.0, 1.0, 0.2, reason=""),
            ChangeRow("C обл.", "C", "2013", None, None, None, reason="2013 толқынында жоқ"),
        )
    )
    texts = _texts(svg)
    assert " қолжетімсіз (2013 толқынында жоқ)" in texts
    assert {"A", "B", "C"} <= set(texts)
    assert "өсу" in texts and "төмендеу" in texts  # the legend names both colours
    only_decreases = _texts(_change((ChangeRow("A", "A", "2013", -5.0, 2.0, 0.04, ""),)))
    assert "төмендеу" in only_decreases and "өсу" not in only_decreases
