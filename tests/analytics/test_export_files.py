"""Export files on disk: built now or as a job alike from a page and the API, owner-only,
and deleted after the retention period while their jobs stay."""

from __future__ import annotations

import datetime as dt
import io
import stat
from pathlib import Path

import pandas as pd
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from analytics import services
from analytics.exports.jobs import request_export
from analytics.exports.tasks import expire_exports
from analytics.models import ExportJob
from analytics.store import WaveStore, store_root
from tests.analytics.factories_estimates import grant_everywhere, instrument_wave, make_user

pytestmark = pytest.mark.django_db


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def researcher():
    return make_user("researcher", "researcher")


@pytest.fixture
def page_client(client, researcher):
    client.force_login(researcher)
    return client


@pytest.fixture
def api_client(researcher):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(researcher)
    return api


def ask_on_the_page(page_client, wave):
    return page_client.post(
        reverse("analytics:microdata-export"),
        {"waves": [wave.pk], "file_format": "csv", "language": "en", "values": "codes"},
    )


def ask_through_the_api(api_client, wave):
    return api_client.post(
        "/api/export-jobs/",
        {"kind": "microdata", "file_format": "csv", "waves": [wave.pk], "values": "codes"},
        format="json",
    )


def test_a_small_selection_is_built_at_once_from_the_page_and_the_api(
    page_client, api_client, researcher, django_capture_on_commit_callbacks
):
    wave = instrument_wave(n=12)
    grant_everywhere(researcher)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        page = ask_on_the_page(page_client, wave)
        api = ask_through_the_api(api_client, wave)
    assert queued == []  # nothing for a worker
    assert page.status_code == 200 and page["Content-Disposition"].startswith("attachment")
    frame = pd.read_csv(io.BytesIO(b"".join(page.streaming_content)), encoding="utf-8-sig")
    assert len(frame) == 12
    assert api.status_code == 201 and api.json()["status"] == "done"
    assert api.json()["rows_done"] == 12
    assert list(ExportJob.objects.values_list("status", flat=True)) == ["done", "done"]


def test_a_large_selection_becomes_a_job_from_the_page_and_the_api(
    page_client, api_client, researcher, django_capture_on_commit_callbacks, settings
):
    settings.EXPORT_DIRECT_MAX_ROWS = 11
    wave = instrument_wave(n=12)
    grant_everywhere(researcher)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        page = ask_on_the_page(page_client, wave)
        api = ask_through_the_api(api_client, wave)
    assert len(queued) == 2  # one build_export each, after commit
    jobs = ExportJob.objects.order_by("pk")
    assert page.status_code == 302
    assert page["Location"] == reverse("analytics:export-job", args=[jobs[0].pk])
    assert api.status_code == 201 and api.json()["status"] == "queued"
    assert [job.status for job in jobs] == ["queued", "queued"]


def test_finished_export_files_are_deleted_after_the_retention_period(
    page_client, researcher, settings
):
    settings.EXPORT_RETENTION_DAYS = 7
    wave = instrument_wave(n=5)
    grant_everywhere(researcher)
    old, recent = (
        request_export(
            user=researcher, kind="microdata", file_format="csv", parameters={"waves": [wave.pk]}
        ).job
        for _ in range(2)
    )
    old_file, recent_file = Path(old.file.path), Path(recent.file.path)
    now = timezone.now()
    ExportJob.objects.filter(pk=old.pk).update(finished_at=now - dt.timedelta(days=7, hours=1))
    ExportJob.objects.filter(pk=recent.pk).update(finished_at=now - dt.timedelta(days=6))

    assert expire_exports() == [old.pk]
    old.refresh_from_db()
    assert old.status == ExportJob.Status.EXPIRED and old.file == "" and old.expired_at
    assert old.parameters["waves"] == [wave.pk]  # the record stays, to ask again
    assert not old_file.exists()
    assert recent_file.exists() and ExportJob.objects.get(pk=recent.pk).status == "done"
    assert expire_exports() == []  # idempotent

    download = page_client.get(reverse("analytics:export-job-download", args=[old.pk]))
    assert download.status_code == 410
    texts = {
        "en": "The file of this export expired on",
        "ru": "Срок хранения файла этого экспорта истёк",
        "kk": "Бұл экспорттың файлы",
    }
    for language, text in texts.items():
        page = page_client.get(
            reverse("analytics:export-job", args=[old.pk]), HTTP_ACCEPT_LANGUAGE=language
        ).content.decode()
        assert text in page, language
    status = page_client.get(
        reverse("analytics:export-job-status", args=[old.pk]), HTTP_ACCEPT_LANGUAGE="ru"
    ).json()
    assert status["status"] == "expired" and status["download_url"] is None


def test_export_files_and_the_wave_store_are_owner_only(researcher, settings):
    import os

    previous = os.umask(0o022)  # the usual umask: files readable by everyone unless made private
    try:
        wave = instrument_wave(n=8)
        job = request_export(
            user=researcher, kind="microdata", file_format="csv", parameters={"waves": [wave.pk]}
        ).job
        services.recompute_wave(wave_id=wave.pk)
        upload = default_storage.save("forms/probe.xlsx", ContentFile(b"x"))
    finally:
        os.umask(previous)
    export = Path(job.file.path)
    assert mode(export) == 0o600 and mode(export.parent) == 0o700
    store = WaveStore(wave.pk).folder
    assert mode(store_root()) == 0o700 and mode(store) == 0o700
    stored = list(store.iterdir())
    assert stored and all(mode(path) == 0o600 for path in stored)
    uploaded = Path(default_storage.path(upload))
    assert mode(uploaded) == 0o600 and mode(uploaded.parent) == 0o700
