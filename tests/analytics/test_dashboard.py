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
from analytics.models import ExportJob, WaveComputation
from tests.analytics.factories_estimates import (
    grant_everywhere,
    instrument_wave,
    make_user,
    two_waves_with_estimates,
)

pytestmark = pytest.mark.django_db


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
    section = response.context["sections"][1]
    ulytau = next(row for row in section["table"] if row["region"] == "Ulytau Region")
    assert ulytau["cell"].suppressed
    assert "<em>suppressed</em>" in html
    tiles = {tile["short"]: tile for tile in section["tiles"]}
    assert len(tiles) == 20 and tiles["62"]["suppressed"] is True
    assert "Wave 2026: estimates as of" in html and "857 interviews" in html


def test_dashboard_is_in_russian_and_kazakh(researcher_client, waves):
    russian = researcher_client.get(
        reverse("analytics:dashboard"), HTTP_ACCEPT_LANGUAGE="ru"
    ).content.decode()
    assert "Региональные оценки" in russian and "область Ұлытау" in russian
    researcher_client.cookies.load({"tanys_language": "kk"})
    kazakh = researcher_client.get(reverse("analytics:dashboard")).content.decode()
    assert "Өңірлік бағалаулар" in kazakh and "Ұлытау облысы" in kazakh


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
    page = researcher_client.get(
        reverse("analytics:dashboard"),
        {"waves": [later.pk], "indicator": "PERC_BRIBE"},
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    assert "Recomputing: estimates, 40% done." in page


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
    assert download.status_code == 200 and download["Content-Disposition"].endswith('.xlsx"')


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
    # the wave's 30 new interviews parsed into its export cache, then the file written
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
