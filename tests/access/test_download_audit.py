"""Every file of estimates or microdata sent to someone leaves an audit event: who, which
waves, which format, how many rows; never any of the data."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from analytics.models import ExportJob
from audit.models import AuditAction, AuditEvent
from tests.access.access_world import build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


def only_event(action):  # type: ignore[no-untyped-def]
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, events
    return events[0]


def test_a_direct_microdata_download_is_recorded(world, client):
    owner = world.users["researcher_microdata"]
    client.force_login(owner)
    response = client.post(
        "/analytics/microdata/",
        {"waves": [world.wave_a.pk], "file_format": "csv", "language": "en", "values": "codes"},
    )
    assert response.status_code == 200
    b"".join(response.streaming_content)
    event = only_event(AuditAction.MICRODATA_DOWNLOADED)
    assert (event.actor, event.survey_id) == (owner, world.survey_a.pk)
    # A small selection is built at once, as an export job of its own that the event names.
    built = ExportJob.objects.filter(requested_by=owner).exclude(pk=world.job.pk).get()
    assert event.detail == {
        "kind": "microdata",
        "format": "csv",
        "rows": 2,
        "waves": [world.wave_a.pk],
        "wave_codes": ["simple/A1"],
        "surveys": [world.survey_a.pk],
        "export_job": built.pk,
    }


def test_a_refused_download_records_nothing(world, client):
    client.force_login(world.users["researcher_aggregates"])
    response = client.post(
        "/analytics/microdata/",
        {"waves": [world.wave_a.pk], "file_format": "csv", "language": "en", "values": "codes"},
    )
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action=AuditAction.MICRODATA_DOWNLOADED).exists()


def test_regional_downloads_are_recorded_from_the_dashboard_and_the_api(world, client):
    user = world.users["researcher_aggregates"]
    client.force_login(user)
    assert client.get("/analytics/regional.xlsx", {"waves": world.wave_a.pk}).status_code == 200
    api = APIClient()
    api.force_authenticate(user)
    assert (
        api.get("/api/comparison/download/", {"file_format": "json"}).status_code == 200
    )  # no wave named: the user's waves
    events = AuditEvent.objects.filter(action=AuditAction.REGIONAL_DOWNLOADED).order_by("id")
    assert [(e.detail["format"], e.detail["waves"]) for e in events] == [
        ("xlsx", [world.wave_a.pk]),
        ("json", [world.wave_a.pk]),
    ]
    rows = events[0].detail["rows"]
    assert rows > 0 and all(e.actor == user for e in events)


def test_an_export_job_download_is_recorded_with_the_job(world, client):
    owner = world.users["researcher_microdata"]
    client.force_login(owner)
    response = client.get(f"/analytics/exports/{world.job.pk}/download/")
    content = b"".join(response.streaming_content)
    assert content == b"a,b\n1,2\n"
    event = only_event(AuditAction.MICRODATA_DOWNLOADED)
    assert event.object_type == "analytics.exportjob" and event.object_id == str(world.job.pk)
    assert event.detail["export_job"] == world.job.pk
    assert (event.detail["rows"], event.detail["format"]) == (2, "csv")


def test_no_event_holds_any_answer(world, client):
    client.force_login(world.users["researcher_microdata"])
    client.post(
        "/analytics/microdata/",
        {"waves": [world.wave_a.pk], "file_format": "csv", "language": "en", "values": "codes"},
    )
    client.get(f"/analytics/exports/{world.job.pk}/download/")
    stored = json.dumps(list(AuditEvent.objects.values("old", "new", "detail", "object_repr")))
    for interview in (world.interview_a, world.interview_b):
        assert str(interview.instance_id) not in stored
        assert json.dumps(interview.answers)[1:-1] not in stored
