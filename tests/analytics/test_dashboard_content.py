"""The dashboard's numbers, from stored cells to the sections, tables and charts' data.

Two waves on the 2013 geography (the later one's 2013 units pooled from a current wave,
its national cell stored under the current geography), three regions, hand-made cells.
"""

from __future__ import annotations

import dataclasses

import pytest

from analytics.dashboard import (
    EstimateRecord,
    RegionRecord,
    Texts,
    WaveRecord,
    dashboard_content,
    default_indicator,
    short_names,
)

TEXTS = Texts(
    indicator="Bribery seen as widespread",
    unit="share",
    axis_share="Per cent",
    axis_index="Index, 0 to 100",
    axis_change_share="Percentage points",
    geographies={"KZ2013": "2013 geography", "KZ2022": "Current geography"},
    national="Kazakhstan",
    suppressed="suppressed",
    review="review before publishing",
    no_data="no data",
    not_available="not available",
    increase="increase",
    decrease="decrease",
    comparison_title="%(indicator)s by region, %(geography)s",
    change_title="Change, wave %(wave)s, %(geography)s",
    map_title="%(indicator)s, wave %(wave)s, %(geography)s",
    nothing_to_draw="Nothing to draw.",
    no_change_to_draw="No change to draw.",
    no_earlier_wave="no earlier wave",
    not_published_in="not published in wave %(wave)s",
    suppression_reasons={
        "n<30": "fewer than 30 respondents",
        "ci_width>=30": "confidence interval 30 points wide or more",
        "n_eff<30": "effective sample size below 30",
    },
    review_flags={"df<8": "fewer than 8 degrees of freedom"},
    boundary_notes={"boundary_changed": "boundaries changed", "same_unit": "same territory"},
)
W2013 = WaveRecord(id=10, code="2013", label="2013")
W2026 = WaveRecord(id=20, code="2026", label="2026")
AKMOLA = RegionRecord(1, "KZ2013", "KZ-AKM", "Akmola Region", tile_row=1, tile_col=3)
ALMATY_REGION = RegionRecord(2, "KZ2013", "KZ-ALM", "Almaty Region", tile_row=3, tile_col=4)
ALMATY = RegionRecord(3, "KZ2013", "KZ-ALA", "Almaty", tile_row=4, tile_col=4)
REGIONS = [AKMOLA, ALMATY_REGION, ALMATY]


def cell(wave: WaveRecord, region: RegionRecord | None, estimate: float | None, **kw):  # type: ignore[no-untyped-def]
    width = kw.pop("width", 0.1)
    defaults = {
        "ci_low": None if estimate is None else estimate - width,
        "ci_high": None if estimate is None else estimate + width,
        "n": 54,
    }
    return EstimateRecord(
        wave_id=wave.id,
        geography=kw.pop("geography", "KZ2013"),
        region_id=region.id if region else None,
        estimate=estimate,
        **{**defaults, **kw},
    )


CELLS = [
    cell(W2013, None, 0.6, width=0.02, n=857),
    cell(W2013, AKMOLA, 0.55),
    cell(W2013, ALMATY_REGION, None, n=12, suppressed=True, suppression_reason="n<30,ci_width>=30"),
    cell(W2013, ALMATY, 0.7, review_flag="df<8"),
    # the 2026 national cell is stored once, under the wave's own (current) geography
    cell(W2026, None, 0.5, width=0.01, n=3000, geography="KZ2022"),
    cell(
        W2026,
        AKMOLA,
        0.45,
        previous_wave="2013",
        previous_estimate=0.55,
        change=-0.1,
        change_se=0.07,
        change_p_adjusted=0.31,
    ),
    cell(W2026, ALMATY_REGION, 0.52, previous_wave="2013", previous_estimate=None),
    cell(
        W2026,
        ALMATY,
        None,
        suppressed=True,
        suppression_reason="n_eff<30",
        previous_wave="2013",
        previous_estimate=0.7,
    ),
]


def content(cells=CELLS, texts=TEXTS, waves=(W2013, W2026)):  # type: ignore[no-untyped-def]
    return dashboard_content(estimates=cells, waves=list(waves), regions=REGIONS, texts=texts)


def only_section(result):  # type: ignore[no-untyped-def]
    assert [s.geography for s in result.sections] == ["KZ2013"]
    return result.sections[0]


def row(section, wave: str, region: str):  # type: ignore[no-untyped-def]
    return next(r for r in section.table if r.wave == wave and r.region == region)


def test_table_estimates_and_intervals_of_shares_are_in_per_cent():
    section = only_section(content())
    akmola = row(section, "2013", "Akmola Region")
    assert akmola.estimate == pytest.approx(55.0)
    assert (akmola.ci_low, akmola.ci_high) == (pytest.approx(45.0), pytest.approx(65.0))
    assert akmola.n == 54 and not akmola.suppressed
    assert content().axis_label == "Per cent"


def test_an_index_is_shown_as_it_is():
    texts = dataclasses.replace(TEXTS, unit="index")
    cells = [dataclasses.replace(c, estimate=c.estimate and c.estimate * 100) for c in CELLS]
    section = only_section(content(cells=cells, texts=texts))
    assert row(section, "2013", "Akmola Region").estimate == pytest.approx(55.0)
    assert content(texts=texts).axis_label == "Index, 0 to 100"


def test_tiles_show_the_latest_wave_in_per_cent_with_short_names():
    section = only_section(content())
    tiles = {t.code: t for t in section.tiles}
    assert tiles["KZ-AKM"].estimate == pytest.approx(45.0)
    assert tiles["KZ-ALM"].estimate == pytest.approx(52.0)
    assert tiles["KZ-ALA"].estimate is None and tiles["KZ-ALA"].suppressed
    # "Region" dropped, except where Almaty Region would look like the city of Almaty
    assert [tiles[c].label for c in ("KZ-AKM", "KZ-ALM", "KZ-ALA")] == [
        "Akmola",
        "Almaty Region",
        "Almaty",
    ]
    assert section.map.title == "Bribery seen as widespread, wave 2026, 2013 geography"
    assert (tiles["KZ-AKM"].row, tiles["KZ-AKM"].col) == (1, 3)


def test_change_between_waves_and_its_standard_error_are_in_points():
    section = only_section(content())
    changes = {c.region: c for c in section.changes}
    akmola = changes["Akmola Region"]
    assert akmola.change == pytest.approx(-10.0)
    assert akmola.change_se == pytest.approx(7.0)
    assert akmola.p_adjusted == pytest.approx(0.31) and akmola.previous_wave == "2013"
    assert akmola.reason == ""
    assert section.change is not None and section.change.rows == section.changes
    assert section.change.title == "Change, wave 2026, 2013 geography"
    assert section.change.axis_label == "Percentage points"


def test_a_region_without_a_change_says_why():
    section = only_section(content())
    changes = {c.region: c for c in section.changes}
    assert changes["Almaty Region"].change is None
    assert changes["Almaty Region"].reason == "not published in wave 2013"
    assert changes["Almaty"].change is None and changes["Almaty"].change_se is None
    assert changes["Almaty"].reason == "not published in wave 2026"
    boundary = cell(W2026, AKMOLA, 0.45, previous_wave="2013", boundary_note="boundary_changed")
    section = only_section(content(cells=[*CELLS[:5], boundary]))
    assert section.changes[0].reason == "boundaries changed"
    # with no change at all to draw, the table still says why and the chart is not drawn
    assert section.change is None and section.no_change_to_draw == "No change to draw."


def test_suppressed_cells_keep_n_and_list_every_reason_and_show_no_value():
    section = only_section(content())
    almaty_region = row(section, "2013", "Almaty Region")
    assert almaty_region.suppressed and almaty_region.n == 12
    assert (almaty_region.estimate, almaty_region.ci_low, almaty_region.ci_high) == (None,) * 3
    assert almaty_region.reasons == (
        "fewer than 30 respondents",
        "confidence interval 30 points wide or more",
    )
    point = next(p for p in section.comparison.series[0].points if p.region == "Almaty Region")
    assert point.suppressed and point.estimate is None
    # a published cell carries no suppression reason; a suppressed one no review note
    assert row(section, "2013", "Akmola Region").reasons == ()
    flagged = dataclasses.replace(CELLS[2], review_flag="df<8")
    section = only_section(content(cells=[*CELLS[:2], flagged, *CELLS[3:]]))
    assert row(section, "2013", "Almaty Region").review_notes == ()
    assert not row(section, "2013", "Almaty Region").review


def test_estimates_flagged_for_review_are_marked():
    section = only_section(content())
    almaty = row(section, "2013", "Almaty")
    assert almaty.review and almaty.estimate == pytest.approx(70.0)
    assert almaty.review_notes == ("fewer than 8 degrees of freedom",)
    points = {p.region: p for p in section.comparison.series[0].points}
    assert points["Almaty"].review and not points["Akmola"].review


def test_every_wave_has_its_national_line_and_row_in_every_geography():
    section = only_section(content())
    comparison = section.comparison
    assert [s.name for s in comparison.series] == ["2013", "2026"]
    assert [s.national for s in comparison.series] == [pytest.approx(60.0), pytest.approx(50.0)]
    nationals = [r for r in section.table if r.is_national]
    assert [(r.wave, r.region, r.estimate) for r in nationals] == [
        ("2013", "Kazakhstan", pytest.approx(60.0)),
        ("2026", "Kazakhstan", pytest.approx(50.0)),
    ]
    assert (nationals[1].ci_low, nationals[1].ci_high) == (
        pytest.approx(49.0),
        pytest.approx(51.0),
    )
    # each wave: its national row first, then its regions by name
    assert [r.region for r in section.table if r.wave == "2013"] == [
        "Kazakhstan",
        "Akmola Region",
        "Almaty",
        "Almaty Region",
    ]


def test_the_comparison_chart_data_are_in_per_cent():
    comparison = only_section(content()).comparison
    assert comparison.regions == ("Akmola", "Almaty", "Almaty Region")
    points = {(s.name, p.region): p for s in comparison.series for p in s.points}
    akmola = points[("2026", "Akmola")]
    assert (akmola.estimate, akmola.ci_low, akmola.ci_high) == (
        pytest.approx(45.0),
        pytest.approx(35.0),
        pytest.approx(55.0),
    )
    assert comparison.title == "Bribery seen as widespread by region, 2013 geography"


def test_nothing_to_draw_when_every_regional_cell_is_suppressed():
    hidden = [
        dataclasses.replace(c, estimate=None, suppressed=True, suppression_reason="n<30")
        if c.region_id
        else c
        for c in CELLS
    ]
    section = only_section(content(cells=hidden))
    assert section.comparison is None and section.nothing_to_draw == "Nothing to draw."
    assert section.change is None
    assert all(t.suppressed for t in section.tiles)
    assert len(section.table) == 8  # the table still lists every cell, with its reasons
    assert only_section(content()).nothing_to_draw == ""


def test_a_wave_without_an_earlier_one_has_no_change_section():
    section = only_section(content(cells=CELLS[:4], waves=(W2013,)))
    assert section.changes == () and section.change is None
    assert section.map.title.endswith("wave 2013, 2013 geography")


def test_short_names_drop_the_generic_word_in_each_language():
    names = {
        1: "Абай облысы",
        2: "Алматы облысы",
        3: "Алматы",
        4: "Батыс Қазақстан облысы",
    }
    assert short_names(names) == {
        1: "Абай",
        2: "Алматы облысы",
        3: "Алматы",
        4: "Батыс Қазақстан",
    }
    russian = {1: "область Абай", 2: "Алматинская область", 3: "Алматы"}
    assert short_names(russian) == {1: "Абай", 2: "Алматинская", 3: "Алматы"}


def test_regions_are_in_the_order_of_the_kazakh_alphabet():
    kazakh = [
        RegionRecord(k, "KZ2013", f"KZ-{k}", name, 0, k)
        for k, name in enumerate(["Атырау", "Ақмола", "Қостанай", "Павлодар", "Абай"])
    ]
    cells = [cell(W2013, region, 0.5) for region in kazakh]
    result = dashboard_content(estimates=cells, waves=[W2013], regions=kazakh, texts=TEXTS)
    assert result.sections[0].comparison.regions == (
        "Абай",
        "Ақмола",
        "Атырау",
        "Қостанай",
        "Павлодар",
    )
    # in Russian, by the distinctive part of the name: «область Абай» first, not under «о»
    russian = [
        RegionRecord(k, "KZ2013", f"KZ-{k}", name, 0, k)
        for k, name in enumerate(["Акмолинская область", "область Абай", "область Ұлытау"])
    ]
    cells = [cell(W2013, region, 0.5) for region in russian]
    section = dashboard_content(estimates=cells, waves=[W2013], regions=russian, texts=TEXTS)
    assert [r.region for r in section.sections[0].table] == [
        "область Абай",
        "Акмолинская область",
        "область Ұлытау",
    ]


def test_the_default_indicator_is_the_first_with_the_most_published_cells():
    order = ["PERC_BRIBE", "PERC_CONN", "EXP_BRIBE_EVER"]
    assert default_indicator(order, {"PERC_BRIBE": 2, "PERC_CONN": 15, "EXP_BRIBE_EVER": 15}) == (
        "PERC_CONN"
    )
    assert default_indicator(order, {}) == "PERC_BRIBE"
    assert default_indicator([], {}) is None
