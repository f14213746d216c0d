"""Dashboard pages: access, charts with their tables, freshness, downloads, microdata form."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from analytics import exports
from analytics.exports import jobs
from analytics.models import ExportJob, IndicatorEstimate, WaveComputation
from tests.analytics.factories_estimates import (
    grant_everywhere,
    instrument_wave,
    make_user,
    regional_estimates,
    two_waves_with_estimates,
)
from tests.factories import WaveFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def charts_drawn_afresh(monkeypatch):
    """Drawn charts are cached by their data (in Redis under CI), across test runs too:
    each test gets keys of its own, so it sees what the code draws today (without
    flushing a Redis database that the broker may share)."""
    import uuid

    from analytics import charts, views

    monkeypatch.setattr(charts, "STYLE", f"test-{uuid.uuid4().hex}")
    monkeypatch.setattr(views, "CHART_CACHE_SECONDS", 120)


@pytest.fixture
def waves():
    return two_waves_with_estimates()


@pytest.fixture
def researcher_client(client):
    client.researcher = make_user("researcher", "researcher")
    client.force_login(client.researcher)
    return client


def test_dashboard_needs_a_researcher(client, waves):
    url = reverse("analytics:dashboard")
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(
        reverse("analytics:login")
    )
    client.force_login(make_user("bare"))  # signed in, no permission: refused, not sent to log in
    assert client.get(url).status_code == 403


def test_dashboard_shows_charts_tables_and_suppressed_cells(researcher_client, waves):
    earlier, later = waves
    IndicatorEstimate.objects.filter(region__code="KZ-62").update(
        suppression_reason="n<30,disclosure<10"
    )
    response = researcher_client.get(
        reverse("analytics:dashboard"),
        {"survey": earlier.survey.code, "waves": [earlier.pk, later.pk], "indicator": "PERC_BRIBE"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert (
        html.count('role="img"') == 2 * 2 + 1
    )  # comparison and map per geography, one change chart
    assert "Ulytau Region" in html and "Mangystau Region" in html
    section = response.context["sections"][1].content
    ulytau = next(row for row in section.table if row.region == "Ulytau Region")
    assert ulytau.suppressed and ulytau.n == 12
    assert "<em>suppressed</em>" in html
    assert ulytau.reasons == (
        "fewer than 30 respondents",
        "fewer than 10 respondents in the numerator or denominator",
    )
    assert (  # each reason its own entry, not run together
        "<li>fewer than 30 respondents</li>"
        "<li>fewer than 10 respondents in the numerator or denominator</li>"
    ) in html
    tiles = {tile.code: tile for tile in section.tiles}
    assert len(tiles) == 20 and tiles["KZ-62"].suppressed is True
    assert tiles["KZ-62"].label == "Ulytau"
    assert "Wave 2026: estimates as of" in html and "857 interviews" in html


def test_the_page_prints_shares_in_per_cent(researcher_client, waves):
    earlier, later = waves
    html = researcher_client.get(
        reverse("analytics:dashboard"),
        {"waves": [later.pk], "indicator": "PERC_BRIBE"},
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    # national 0.5 (0.48 to 0.52); Abai Region, the first current unit by code, 0.5 +- 0.1;
    # Akmola Region, the second, 0.51 +- 0.1
    row = '<td>%s</td>\n        <td>%s</td><td class="ci">%s&nbsp;–&nbsp;%s</td>'
    assert row % ("Kazakhstan", "50.0", "48.0", "52.0") in html
    assert row % ("Abai Region", "50.0", "40.0", "60.0") in html
    assert row % ("Akmola Region", "51.0", "41.0", "61.0") in html


def test_every_selected_wave_has_its_national_line_on_the_2013_chart(researcher_client, waves):
    earlier, later = waves
    regional_estimates(
        later,
        geography="KZ2013",
        base=0.5,
        previous_wave=earlier,
        national=False,
        result_set=later.result_sets.get(is_current=True),
    )
    response = researcher_client.get(
        reverse("analytics:dashboard"),
        {"waves": [earlier.pk, later.pk], "indicator": "PERC_BRIBE", "geography": "KZ2013"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    [drawn] = response.context["sections"]
    series = drawn.content.comparison.series
    assert [(s.name, s.national) for s in series] == [("2013", 60.0), ("2026", 50.0)]
    assert 'id="national-0"' in drawn.comparison_svg and 'id="national-1"' in drawn.comparison_svg


def test_first_visit_opens_on_waves_with_estimates_and_an_indicator_with_published_cells(
    researcher_client, waves
):
    earlier, later = waves
    WaveFactory(
        code="2030", geography="KZ2022", survey=later.survey, form_version=later.form_version
    )
    result_set = later.result_sets.get(is_current=True)
    regional_estimates(later, indicator="PERC_CONN", result_set=result_set)
    # PERC_BRIBE has one suppressed region in 2026, PERC_CONN none: PERC_CONN is shown
    response = researcher_client.get(reverse("analytics:dashboard"), HTTP_ACCEPT_LANGUAGE="en")
    form = response.context["form"]
    assert form.cleaned_data["indicator"] == "PERC_CONN"
    assert [w.code for w in form.cleaned_data["waves"]] == ["2013", "2026"]
    assert response.context["sections"]


def test_survey_and_wave_titles_are_shown_in_the_interface_language(researcher_client, waves):
    earlier, later = waves
    survey = earlier.survey
    survey.title, survey.title_kk, survey.title_ru = "Informal networks", "Бейресми желілер", ""
    survey.save()
    later.title_ru = "Вторая волна"
    later.save()
    russian = researcher_client.get(
        reverse("analytics:dashboard"), HTTP_ACCEPT_LANGUAGE="ru"
    ).content.decode()
    assert "Вторая волна</option>" in russian
    assert ">Informal networks</option>" in russian  # no Russian title: the title itself
    researcher_client.cookies.load({"tanys_language": "kk"})
    kazakh = researcher_client.get(reverse("analytics:dashboard")).content.decode()
    assert ">Бейресми желілер</option>" in kazakh and "Вторая волна" not in kazakh
    assert survey.translated_title("en") == "Informal networks"


def test_the_admin_edits_the_translated_titles(admin_client, waves):
    earlier, later = waves
    for url in (
        reverse("admin:surveys_survey_change", args=[earlier.survey.pk]),
        reverse("admin:surveys_wave_change", args=[later.pk]),
    ):
        page = admin_client.get(url).content.decode()
        assert all(f'name="title_{code}"' in page for code in ("kk", "ru", "en"))


def test_charts_are_drawn_once_per_result_set(
    researcher_client, waves, monkeypatch, django_assert_max_num_queries
):
    from analytics import charts

    drawn: list[str] = []
    for name in ("comparison_chart", "change_chart", "tile_map"):
        real = getattr(charts, name)
        monkeypatch.setattr(charts, name, lambda chart, _real=real: drawn.append(1) or _real(chart))
    earlier, later = waves
    query = {"waves": [earlier.pk, later.pk], "indicator": "PERC_BRIBE"}

    def svgs(response) -> list[str]:  # type: ignore[no-untyped-def]
        return re.findall(r"<svg\b.*?</svg>", response.content.decode(), re.S)

    first = svgs(researcher_client.get(reverse("analytics:dashboard"), query))
    assert len(drawn) == 5 and len(first) == 5
    # session and permissions (4), the user's role grants and their regions (2), surveys and
    # waves for the forms (6), cells and regions (2), each wave's freshness (2 x 2): the
    # same whatever the number of regions or charts
    with django_assert_max_num_queries(18):
        again = svgs(researcher_client.get(reverse("analytics:dashboard"), query))
    assert len(drawn) == 5 and again == first
    # a new result set with other numbers is drawn anew
    regional_estimates(later, suppressed_codes=("KZ-62",), previous_wave=earlier, base=0.4)
    researcher_client.get(reverse("analytics:dashboard"), query)
    assert len(drawn) == 5 + 3  # the 2026 geography's three charts; the 2013 one is unchanged


def test_freshness_reports_a_running_recomputation(researcher_client, waves):
    earlier, later = waves
    WaveComputation.objects.update_or_create(
        wave=later,
        defaults={
            "dirty": True,
            "running_since": timezone.now(),
            "stage": "estimates",
            "progress": 0.4,
        },
    )
    data = researcher_client.get(reverse("analytics:freshness"), {"wave": [later.pk]}).json()
    assert data["waves"][0]["running"] is True and data["waves"][0]["progress"] == 0.4
    assert data["waves"][0]["n_interviews"] == 857
    assert data["waves"][0]["stage_label"] == "көрсеткіштер бағалануда"  # the default language

    def page(language: str) -> str:
        return researcher_client.get(
            reverse("analytics:dashboard"),
            {"waves": [later.pk], "indicator": "PERC_BRIBE"},
            HTTP_ACCEPT_LANGUAGE=language,
        ).content.decode()

    assert "Recomputing: estimating the indicators, 40% done." in page("en")
    assert "Идёт пересчёт: оценка показателей, выполнено 40%." in page("ru")


@pytest.mark.parametrize("file_format", ["csv", "xlsx", "json", "parquet"])
def test_regional_downloads_from_the_dashboard(researcher_client, waves, file_format):
    earlier, later = waves
    response = researcher_client.get(
        reverse("analytics:regional-download", args=[file_format]),
        {"waves": [later.pk], "scope": "all"},
    )
    assert response.status_code == 200
    content = response.content
    if file_format == "csv":
        frame = pd.read_csv(io.BytesIO(content), encoding="utf-8-sig")
    elif file_format == "xlsx":
        frame = pd.read_excel(io.BytesIO(content), sheet_name="regional")
    elif file_format == "json":
        frame = pd.DataFrame(pd.read_json(io.BytesIO(content), typ="series")["rows"])
    else:
        frame = pd.read_parquet(io.BytesIO(content))
    assert len(frame) == 21
    assert set(frame["wave"].astype(str)) == {"2026"}


def test_small_microdata_export_comes_back_at_once(researcher_client):
    wave = instrument_wave(n=30)
    grant_everywhere(researcher_client.researcher)  # made before the instrument's survey
    response = researcher_client.post(
        reverse("analytics:microdata-export"),
        {"waves": [wave.pk], "file_format": "csv", "language": "en", "values": "labels"},
    )
    assert response.status_code == 200
    frame = pd.read_csv(io.BytesIO(b"".join(response.streaming_content)), encoding="utf-8-sig")
    assert len(frame) == 30 and "Yes" in set(frame["C_MED"])


def test_large_microdata_export_becomes_a_job(
    researcher_client, settings, tmp_path, django_capture_on_commit_callbacks, embedded_tasks
):
    settings.EXPORT_DIRECT_MAX_ROWS = 5
    settings.MEDIA_ROOT = tmp_path
    wave = instrument_wave(n=30)
    grant_everywhere(researcher_client.researcher)  # made before the instrument's survey
    with django_capture_on_commit_callbacks(execute=True):
        response = researcher_client.post(
            reverse("analytics:microdata-export"),
            {"waves": [wave.pk], "file_format": "xlsx", "language": "kk", "values": "labels"},
        )
    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "analytics:export-job", args=[job.pk]
    )
    status = researcher_client.get(reverse("analytics:export-job-status", args=[job.pk])).json()
    assert status["status"] == "done" and status["rows_done"] == status["rows_total"] == 30
    download = researcher_client.get(status["download_url"])
    assert download.status_code == 200 and '.xlsx"; filename*=' in download["Content-Disposition"]


def test_microdata_export_needs_the_permission(client):
    wave = instrument_wave(n=3)
    client.force_login(make_user("supervisor1", "supervisor"))
    response = client.post(
        reverse("analytics:microdata-export"),
        {"waves": [wave.pk], "file_format": "csv", "language": "en", "values": "codes"},
    )
    assert response.status_code == 403


def test_api_token_page_makes_a_token_and_shows_it_once(researcher_client):
    page = researcher_client.get(
        reverse("analytics:api-token"), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "You have no token yet." in page
    made = researcher_client.post(reverse("analytics:api-token"))
    from apitokens.models import ApiToken, token_digest

    token = ApiToken.objects.get()
    secret = re.search(r'id="token" readonly value="([^"]+)"', made.content.decode()).group(1)
    assert token.digest == token_digest(secret) and secret.startswith(token.prefix)
    assert made["Cache-Control"] == "no-store"
    later = researcher_client.get(reverse("analytics:api-token")).content.decode()
    assert secret not in later and token.prefix in later


def test_a_running_export_says_what_it_is_doing(researcher_client, monkeypatch, embedded_tasks):
    wave = instrument_wave(n=30)
    grant_everywhere(researcher_client.researcher)  # made before the instrument's survey
    states = []
    report = jobs._JobProgress._set

    def spy(self, state):
        states.append(state)
        report(self, state)

    monkeypatch.setattr(jobs._JobProgress, "_set", spy)
    user = get_user_model().objects.get(username="researcher")
    job = exports.create_export_job(
        user=user, kind="microdata", file_format="csv", parameters={"waves": [wave.pk]}
    )
    exports.run_export_job(job_id=job.pk)
    # the wave's 30 new interviews parsed into its store, then the file written
    assert ("preparing", 30, 30) in states
    assert states.index(("preparing", 30, 30)) < states.index(("writing", 30, 30))

    ExportJob.objects.filter(pk=job.pk).update(status="running", stage="preparing")
    status_url = reverse("analytics:export-job-status", args=[job.pk])
    status = researcher_client.get(status_url, HTTP_ACCEPT_LANGUAGE="ru").json()
    assert status["stage"] == "preparing" and status["stage_label"] == "Подготовка интервью"
    page = researcher_client.get(
        reverse("analytics:export-job", args=[job.pk]), HTTP_ACCEPT_LANGUAGE="kk"
    ).content.decode()
    assert "Сұхбаттар дайындалуда" in page


def test_codebook_page_shows_every_variable_in_three_languages(researcher_client):
    wave = instrument_wave(n=5)
    grant_everywhere(researcher_client.researcher)  # made before the instrument's survey
    page = researcher_client.get(
        reverse("analytics:codebook"), {"waves": [wave.pk]}, HTTP_ACCEPT_LANGUAGE="ru"
    ).content.decode()
    codebook = exports.MicrodataSelection(wave_ids=(wave.pk,)).codebook()
    p1 = next(v for v in codebook.variables if v.name == "P1")
    for text in (p1.labels["kk"], p1.labels["ru"], p1.labels["en"]):
        assert escape(text) in page
    assert page.count('<tr id="var-') == len(codebook.variables)
    assert "Отказ от ответа" in page and "Жауап беруден бас тартты" in page  # code -2
    assert "M_OTHER" in page.split("Не включено в микроданные")[1]  # withheld, said why


def test_codebook_page_needs_the_microdata_permission(client):
    wave = instrument_wave(n=3)
    client.force_login(make_user("supervisor2", "supervisor"))
    response = client.get(reverse("analytics:codebook"), {"waves": [wave.pk]})
    assert response.status_code == 403
