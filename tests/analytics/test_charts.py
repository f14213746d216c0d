"""Charts: accessible SVG, suppressed cells drawn as words (never as zero), hatched tiles."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from analytics import charts

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_comparison_chart_is_accessible_and_marks_suppressed_cells():
    svg = charts.comparison_chart(
        [
            {
                "name": "2026",
                "national": 0.5,
                "cells": {
                    "Абай облысы": {
                        "estimate": 0.42,
                        "ci_low": 0.35,
                        "ci_high": 0.5,
                        "suppressed": False,
                    },
                    "Ұлытау облысы": {
                        "estimate": None,
                        "ci_low": None,
                        "ci_high": None,
                        "suppressed": True,
                    },
                },
            }
        ],
        regions=["Абай облысы", "Ұлытау облысы"],
        title="Пара кең таралған деп санайтындар",
        axis_label="Пайыз",
        national_label="Қазақстан",
        suppressed_label="жарияланбайды",
        scale=100,
    )
    root = _parse(svg)
    assert (
        root.get("role") == "img" and root.get("aria-label") == "Пара кең таралған деп санайтындар"
    )
    assert root.find(f"{SVG}title").text == "Пара кең таралған деп санайтындар"
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert " жарияланбайды" in texts  # the suppressed region says so, in the page's language
    assert "Ұлытау облысы" in texts and "Қазақстан (2026)" in texts
    # Exactly one estimate marker is drawn: the suppressed cell has none (no dot at zero).
    assert len(re.findall(r'<g id="estimate-', svg)) == 1
    one_wave = [
        {
            "name": "w",
            "national": None,
            "cells": {"A": {"estimate": 0.1, "ci_low": 0.0, "ci_high": 0.2}},
        }
    ]
    labels = {"title": "t", "axis_label": "x", "national_label": "n", "suppressed_label": "s"}
    # deterministic output: the same data draw the same bytes
    assert charts.comparison_chart(one_wave, regions=["A"], **labels) == charts.comparison_chart(
        one_wave, regions=["A"], **labels
    )


def test_tile_map_hatches_suppressed_regions_and_colours_the_rest():
    tiles = [
        {"row": 0, "col": 0, "short": "10", "estimate": 0.2, "suppressed": False},
        {"row": 0, "col": 1, "short": "62", "estimate": None, "suppressed": True},
        {"row": 1, "col": 0, "short": "75", "estimate": 0.8, "suppressed": False},
        {"row": 1, "col": 1, "short": "79", "estimate": None, "suppressed": False},
    ]
    svg = charts.tile_map(
        tiles, title="Карта", suppressed_label="скрыто", no_data_label="нет данных", scale=100
    )
    root = _parse(svg)
    assert root.get("aria-label") == "Карта"
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    for expected in ("10", "62", "75", "79", "20", "80", "скрыто", "нет данных"):
        assert expected in texts
    assert svg.count("<pattern") == 1  # the hatch of the one suppressed tile
    fills = set(re.findall(r"fill: (#[0-9a-f]{6})", svg))
    assert len(fills) >= 3  # low, high and the no-data grey differ


def test_change_chart_says_not_available_without_a_change():
    svg = charts.change_chart(
        [
            {"region": "A", "change": -0.05, "change_se": 0.02},
            {"region": "B", "change": None, "change_se": None},
        ],
        title="Өзгеріс",
        axis_label="пункт",
        unavailable_label="қолжетімсіз",
        scale=100,
    )
    texts = [t.text or "" for t in _parse(svg).iter(f"{SVG}text")]
    assert " қолжетімсіз" in texts and "A" in texts and "B" in texts
