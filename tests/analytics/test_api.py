"""REST API: permissions by role, filters, pagination, query counts, export jobs, the schema."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from analytics.exports.tasks import build_export
from analytics.models import ExportJob
from tests.analytics.factories_estimates import (
    grant_everywhere,
    instrument_wave,
    make_user,
    regional_estimates,
    two_waves_with_estimates,
)
from tests.factories import WaveFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher():
    return make_user("researcher", "researcher")


@pytest.fixture
def client_for():
    def build(user=None, token: str | None = None) -> APIClient:
        client = APIClient()
        if token:
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        elif user is not None:
            client.force_authenticate(user)
        return client

    return build


@pytest.fixture
def estimates():
    return two_waves_with_estimates()


@pytest.mark.parametrize(
    "url",
    [
        "/api/surveys/",
        "/api/waves/",
        "/api/regions/",
        "/api/form-versions/",
        "/api/estimates/",
        "/api/comparison/",
        "/api/export-jobs/",
    ],
)
def test_permissions_by_role(url, client_for, researcher):
    assert client_for().get(url).status_code == 401
    bare = make_user("bare")
    assert client_for(bare).get(url).status_code == 403
    enumerator = make_user("enumerator1", "enumerator")
    assert client_for(enumerator).get(url).status_code == 403
    assert client_for(researcher).get(url).status_code == 200


def test_token_from_the_token_endpoint_authenticates(client_for, researcher):
    response = APIClient().post(
        "/api/token/", {"username": "researcher", "password": "correct-horse-42"}
    )
    assert response.status_code == 200
    token = response.json()["token"]
    assert client_for(token=token).get("/api/regions/?geography=KZ2013").json()["count"] == 16
    assert client_for(token="not-a-token").get("/api/regions/").status_code == 401


def test_estimate_filters(estimates, client_for, researcher):
    earlier, later = estimates
    client = client_for(researcher)
    by_wave = client.get(f"/api/estimates/?wave={later.pk}").json()
    assert by_wave["count"] == 21
    assert {row["wave"] for row in by_wave["results"]} == {"2026"}
    one = client.get(f"/api/estimates/?wave={later.pk}&region=KZ-62&indicator=PERC_BRIBE").json()
    assert one["count"] == 1
    cell = one["results"][0]
    assert cell["suppressed"] is True and cell["estimate"] is None and cell["n"] == 12
    national = client.get("/api/estimates/?region=KZ&geography=KZ2013").json()
    assert national["count"] == 1 and national["results"][0]["region"] is None
    assert client.get("/api/estimates/?indicator=NET_EVER").json()["count"] == 0
    assert client.get("/api/estimates/?geography=KZ2099").status_code == 400
    waves = client.get("/api/waves/?geography=KZ2022").json()
    assert [w["code"] for w in waves["results"]] == ["2026"]


def test_estimates_paginate(estimates, client_for, researcher):
    earlier, later = estimates
    for indicator in ("NET_EVER", "PERC_CONN", "EXP_BRIBE_EVER", "REPRODUCING"):
        regional_estimates(
            later, indicator=indicator, result_set=later.result_sets.get(is_current=True)
        )
    client = client_for(researcher)
    first = client.get("/api/estimates/").json()
    assert first["count"] == 17 + 21 * 5
    assert len(first["results"]) == 100 and first["next"]
    second = client.get(first["next"]).json()
    assert len(second["results"]) == first["count"] - 100 and second["next"] is None


def _queries(user, url) -> int:
    from django.contrib.auth import get_user_model

    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(pk=user.pk))  # no cached permissions
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context.captured_queries)


@pytest.mark.parametrize(
    "url",
    ["/api/estimates/", "/api/comparison/", "/api/waves/", "/api/regions/", "/api/form-versions/"],
)
def test_list_endpoints_run_a_fixed_number_of_queries(url, researcher):
    small_wave = WaveFactory(code="S", geography="KZ2013")
    regional_estimates(small_wave)
    small = _queries(researcher, url)
    big_wave = WaveFactory(
        code="B", geography="KZ2022", survey=small_wave.survey, form_version=small_wave.form_version
    )
    regional_estimates(big_wave, previous_wave=small_wave)
    assert _queries(researcher, url) == small
    assert small <= 6


def test_comparison_table_and_download(estimates, client_for, researcher):
    earlier, later = estimates
    client = client_for(researcher)
    table = client.get(f"/api/comparison/?wave={later.pk}&region=KZ-62&region=KZ-10").json()
    assert table["count"] == 2
    ulytau = next(r for r in table["results"] if r["region_code"] == "KZ-62")
    assert ulytau["estimate"] is None and ulytau["n"] == 12 and ulytau["reliable"] == 0
    assert (
        ulytau["region_name_ru"] == "область Ұлытау" and ulytau["region_name_en"] == "Ulytau Region"
    )
    response = client.get(
        f"/api/comparison/download/?wave={earlier.pk}&wave={later.pk}&file_format=csv"
    )
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    frame = pd.read_csv(io.BytesIO(response.content), encoding="utf-8-sig")
    assert len(frame) == 17 + 21
    assert client.get("/api/comparison/download/?file_format=pdf").status_code == 400


def test_export_jobs_need_the_microdata_permission_for_microdata(
    client_for, researcher, django_capture_on_commit_callbacks
):
    wave = instrument_wave(n=20)
    grant_everywhere(researcher)  # made before the instrument's survey
    supervisor = make_user("supervisor1", "supervisor")  # may view estimates, not microdata
    body = {"kind": "microdata", "file_format": "csv", "waves": [wave.pk], "language": "ru"}
    assert client_for(supervisor).post("/api/export-jobs/", body, format="json").status_code == 403
    regional = {"kind": "regional", "file_format": "xlsx"}
    with django_capture_on_commit_callbacks(execute=False):
        assert (
            client_for(supervisor).post("/api/export-jobs/", regional, format="json").status_code
            == 201
        )
    bad = client_for(researcher).post(
        "/api/export-jobs/", {**body, "file_format": "parquet"}, format="json"
    )
    assert bad.status_code == 400 and "csv, xlsx, sav, dta" in str(bad.json())
    missing = client_for(researcher).post(
        "/api/export-jobs/", {**body, "waves": [999999]}, format="json"
    )
    assert missing.status_code == 400 and "999999" in str(missing.json())


def test_export_job_progress_download_and_own_jobs_only(
    client_for, researcher, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    settings.EXPORT_DIRECT_MAX_ROWS = 0  # every microdata export becomes a job
    wave = instrument_wave(n=60)
    grant_everywhere(researcher)  # made before the instrument's survey
    client = client_for(researcher)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        created = client.post(
            "/api/export-jobs/",
            {"kind": "microdata", "file_format": "dta", "waves": [wave.pk], "language": "en"},
            format="json",
        )
    assert created.status_code == 201 and created.json()["status"] == "queued"
    assert len(callbacks) == 1  # enqueued after commit
    job_id = created.json()["id"]
    assert client.get(f"/api/export-jobs/{job_id}/download/").status_code == 409
    build_export(job_id)  # the task function, as a worker runs it
    build_export(job_id)  # a redelivered message finds the job done and leaves it alone
    detail = client.get(f"/api/export-jobs/{job_id}/").json()
    assert detail["status"] == "done" and detail["rows_done"] == detail["rows_total"] == 60
    assert detail["progress"] == 1.0 and detail["download_url"].endswith(
        f"/api/export-jobs/{job_id}/download/"
    )
    download = client.get(f"/api/export-jobs/{job_id}/download/")
    assert download.status_code == 200
    content = b"".join(download.streaming_content)
    import pyreadstat

    path = tmp_path / "back.dta"
    path.write_bytes(content)
    frame, _meta = pyreadstat.read_dta(str(path))
    assert len(frame) == 60
    other = make_user("other", "researcher")
    assert client_for(other).get(f"/api/export-jobs/{job_id}/").status_code == 404
    assert client_for(other).get("/api/export-jobs/").json()["count"] == 0


def test_failed_export_job_says_why_and_can_be_retried(
    client_for, researcher, django_capture_on_commit_callbacks, settings, tmp_path, embedded_tasks
):
    wave = instrument_wave(n=10)
    grant_everywhere(researcher)  # made before the instrument's survey
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = blocker
    client = client_for(researcher)
    with django_capture_on_commit_callbacks(execute=False):
        job_id = client.post(
            "/api/export-jobs/",
            {"kind": "microdata", "file_format": "csv", "waves": [wave.pk]},
            format="json",
        ).json()["id"]
    build_export(job_id)
    failed = client.get(f"/api/export-jobs/{job_id}/").json()
    assert failed["status"] == "failed" and "not-a-folder" in failed["error"]
    settings.MEDIA_ROOT = tmp_path / "media"
    with django_capture_on_commit_callbacks(execute=True):
        retried = client.post(f"/api/export-jobs/{job_id}/retry/")
    assert retried.status_code == 200
    done = ExportJob.objects.get(pk=job_id)
    assert done.status == "done" and done.error == "" and done.rows_done == 10
    assert client.post(f"/api/export-jobs/{job_id}/retry/").status_code == 400  # only failed jobs


def test_openapi_schema_validates_and_docs_work_offline(client_for, researcher):
    from openapi_spec_validator import validate

    client = client_for(researcher)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)
    for path in (
        "/api/estimates/",
        "/api/comparison/",
        "/api/export-jobs/{id}/retry/",
        "/api/regions/",
    ):
        assert path in schema["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert (
        "swagger-ui" in html
        and "cdn" not in html.lower()
        and "/static/drf_spectacular_sidecar/" in html
    )
