"""In a real browser: a researcher logs in, switches the dashboard to Russian, downloads the
table; the charts draw what their captions promise, in the interface language."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from tests.analytics.factories_estimates import (
    make_user,
    regional_estimates,
    two_waves_with_estimates,
)
from tests.factories import WaveFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def charts_drawn_afresh(monkeypatch):
    """Drawn charts are cached by their data (in Redis under CI), across test runs too:
    each test gets keys of its own, so it sees what the code draws today (without
    flushing a Redis database that the broker may share)."""
    import uuid

    from analytics import charts, views

    monkeypatch.setattr(charts, "STYLE", f"test-{uuid.uuid4().hex}")
    monkeypatch.setattr(views, "CHART_CACHE_SECONDS", 120)


def test_researcher_switches_language_and_downloads_the_regional_table(live_server, page):
    make_user("aigerim", "researcher", password="dala-kiteap-91")
    wave = WaveFactory(code="2026", geography="KZ2022")
    regional_estimates(wave, suppressed_codes=("KZ-62",))

    page.goto(live_server.url + "/analytics/")
    assert "/analytics/login/" in page.url
    page.fill("#id_username", "aigerim")
    page.fill("#id_password", "dala-kiteap-91")
    page.click("form.stack button[type=submit]")
    page.wait_for_selector("#indicator-title")
    assert page.locator("svg.chart").count() == 2  # comparison chart and tile map
    page.select_option("#language-select", "ru")
    page.wait_for_selector("h1:has-text('Региональные оценки')")
    assert page.locator("html").get_attribute("lang") == "ru"
    assert page.locator("text=Скачать региональную таблицу").is_visible()
    assert page.locator("table.data td", has_text="область Ұлытау").first.is_visible()

    with page.expect_download() as download_info:
        page.click("ul.buttons a:has-text('CSV')")
    download = download_info.value
    name = download.suggested_filename
    assert name.startswith("tanys_") and name.endswith(".csv") and "_regional_" in name, name
    content = download.path().read_bytes()
    assert content.startswith(b"\xef\xbb\xbf")
    frame = pd.read_csv(io.BytesIO(content), encoding="utf-8-sig")
    assert len(frame) == 21
    ulytau = frame[frame["region_code"] == "KZ-62"].iloc[0]
    assert (
        ulytau["region_name_ru"] == "область Ұлытау"
        and pd.isna(ulytau["estimate"])
        and ulytau["n"] == 12
    )


def _log_in(page, live_server, language: str) -> None:  # type: ignore[no-untyped-def]
    make_user("dana", "researcher", password="tau-samal-27")
    page.context.add_cookies(
        [{"name": "tanys_language", "value": language, "url": live_server.url}]
    )
    page.goto(live_server.url + "/analytics/login/")
    page.fill("#id_username", "dana")
    page.fill("#id_password", "tau-samal-27")
    page.click("form.stack button[type=submit]")
    page.wait_for_selector("h1")


def _two_waves_on_both_geographies():  # type: ignore[no-untyped-def]
    earlier, later = two_waves_with_estimates()
    regional_estimates(  # the current wave's 2013 units, pooled; its national cell is stored once
        later,
        geography="KZ2013",
        base=0.5,
        previous_wave=earlier,
        national=False,
        result_set=later.result_sets.get(is_current=True),
    )
    return earlier, later


def _svg_texts(page, selector: str) -> list[str]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector(
        selector, "svg => Array.from(svg.querySelectorAll('text')).map(t => t.textContent)"
    )


def test_the_2013_chart_draws_each_selected_waves_national_line(live_server, page):
    earlier, later = _two_waves_on_both_geographies()
    _log_in(page, live_server, "kk")
    page.goto(
        f"{live_server.url}/analytics/?waves={earlier.pk}&waves={later.pk}&indicator=PERC_BRIBE"
    )
    chart = "#geo-KZ2013 ~ .chart-with-table figure.comparison svg"
    for number in (0, 1):
        line = page.locator(f"{chart} g#national-{number} path")
        assert line.count() == 1
        box = line.bounding_box()  # a line has no width, so check its height on the page
        assert box["height"] > 100  # drawn across the regions, not a dot
    texts = _svg_texts(page, chart)
    assert "Қазақстан (2013)" in texts and "Қазақстан (2026)" in texts
    # each line where its value is: the 2026 line (50) left of the 2013 line (60)
    x2013 = page.locator(f"{chart} g#national-0 path").bounding_box()["x"]
    x2026 = page.locator(f"{chart} g#national-1 path").bounding_box()["x"]
    assert x2026 < x2013


def test_tiles_carry_short_names_in_the_interface_language_and_maps_say_wave_and_geography(
    live_server, page
):
    earlier, later = _two_waves_on_both_geographies()
    _log_in(page, live_server, "ru")
    page.goto(
        f"{live_server.url}/analytics/?waves={earlier.pk}&waves={later.pk}&indicator=PERC_BRIBE"
    )
    current = _svg_texts(page, "#geo-KZ2022 ~ .chart-with-table figure.map svg")
    old = _svg_texts(page, "#geo-KZ2013 ~ .chart-with-table figure.map svg")
    assert (
        "Ұлытау" in current and "Костанайская" in current
    )  # «область Ұлытау», «Костанайская область»
    assert not {"10", "11", "15", "39", "47"} & set(current)  # no bare ISO codes
    assert "Костанайская" in old and not {"KUS", "SEV", "PAV"} & set(old)
    titles = page.eval_on_selector_all(
        "figure.map svg", "s => s.map(x => x.getAttribute('aria-label'))"
    )
    assert len(set(titles)) == 2
    assert all("волна 2026" in t for t in titles)
    assert any("2013 года" in t for t in titles) and any("Текущее" in t for t in titles)


def test_change_chart_has_a_legend_and_reasons_and_an_empty_choice_says_so(live_server, page):
    earlier, later = _two_waves_on_both_geographies()
    _log_in(page, live_server, "kk")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(
        f"{live_server.url}/analytics/?waves={earlier.pk}&waves={later.pk}&indicator=PERC_BRIBE"
    )
    change = "#geo-KZ2022 ~ .chart-with-table figure.change svg"
    texts = _svg_texts(page, change)
    # the current units rise from 0 to +19 points; the legend names the colour drawn
    assert "өсу" in texts
    assert " қолжетімсіз (2026 толқынында жарияланбаған)" in texts  # Ulytau, suppressed in 2026
    reason = page.locator("#geo-KZ2022 ~ .chart-with-table td.unavailable").first
    assert "2026 толқынында жарияланбаған" in reason.inner_text()

    # Kazakh labels are drawn at a readable size, and the interval does not wrap
    smallest = page.evaluate(
        """() => Math.min(...Array.from(document.querySelectorAll('svg.chart text')).map(t => {
            const m = t.getScreenCTM();
            return parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
        }))"""
    )
    assert smallest >= 11
    ci = page.locator("td.ci").first.bounding_box()
    n = page.locator("td.ci + td").first.bounding_box()
    assert ci["height"] <= n["height"] + 1

    # an indicator whose every regional cell is suppressed: no axes, a sentence instead
    from surveys.models import Region

    for wave in (earlier, later):
        regional_estimates(
            wave,
            indicator="PERC_CONN",
            suppressed_codes=tuple(Region.objects.values_list("code", flat=True)),
            result_set=wave.result_sets.get(is_current=True),
        )
    page.goto(
        f"{live_server.url}/analytics/?waves={earlier.pk}&waves={later.pk}&indicator=PERC_CONN"
    )
    notes = page.locator("p.nothing-to-draw")
    assert notes.count() == 2 and notes.first.is_visible()
    assert "ештеңе жоқ" in notes.first.inner_text()
    assert page.locator("figure.comparison").count() == 0
    assert page.locator("figure.change").count() == 0
