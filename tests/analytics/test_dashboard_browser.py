"""In a real browser: a researcher logs in, switches the dashboard to Russian, downloads the table."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from tests.analytics.factories_estimates import make_user, regional_estimates
from tests.factories import WaveFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


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
    assert download.suggested_filename.startswith(
        "tanys-regional-"
    ) and download.suggested_filename.endswith(".csv")
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
