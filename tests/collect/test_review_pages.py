"""The supervisor's review pages: the queue with flags, one interview, approve, send back."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from audit.models import AuditEvent
from collect.models import CollectSettings
from collect.sync import sync_interviews
from surveys.models import ReviewStatus, Submission
from tests.collect.collect_fixtures import assignment_for, bearer, item, tablet_wave, user_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed():
    wave = tablet_wave()
    enumerator = user_in("enumerator", "aigerim", survey=wave.survey)
    assignment = assignment_for(enumerator, wave)
    device, _ = bearer(enumerator)
    night = dt.datetime(2026, 5, 4, 23, 30, tzinfo=dt.UTC)  # 04:30 in Almaty
    results = sync_interviews(
        device=device,
        items=[
            item(assignment, answers={"q1": "1", "age": "34"}),
            item(
                assignment,
                answers={"q1": "2", "age": "61"},
                paradata={
                    "started_at": night.isoformat(),
                    "ended_at": (night + dt.timedelta(minutes=9)).isoformat(),
                    "changes": 3,
                },
            ),
        ],
    )
    assert [r["status"] for r in results] == ["stored", "stored"]
    return {
        "supervisor": user_in("supervisor", "bolat", survey=wave.survey),
        "enumerator": enumerator,
        "device": device,
        "ids": [r["instance_id"] for r in results],
    }


def test_the_queue_lists_pending_field_interviews_with_their_flags(client, reviewed):
    client.force_login(reviewed["supervisor"])
    page = client.get("/review/")
    assert page.status_code == 200
    html = page.content.decode()
    for instance_id in reviewed["ids"]:
        assert instance_id[:8] in html
    assert "04:30" in html  # started off hours, said with the local time
    flagged = client.get("/review/?status=pending&flagged=on").content.decode()
    assert reviewed["ids"][1][:8] in flagged and reviewed["ids"][0][:8] not in flagged


def test_an_interview_page_shows_labelled_answers_and_paradata(client, reviewed):
    client.force_login(reviewed["supervisor"])
    page = client.get(f"/review/{reviewed['ids'][1]}/", HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert page.status_code == 200
    assert "2 = No" in html  # the code with its label in the page's language
    assert "<dt>Answer changes</dt><dd>3</dd>" in html
    assert "Started at 04:30" in html


def test_approving_records_who_decided(client, reviewed):
    client.force_login(reviewed["supervisor"])
    instance_id = reviewed["ids"][0]
    assert client.post(f"/review/{instance_id}/decide", {"decision": "approve"}).status_code == 302
    stored = Submission.objects.get(instance_id=instance_id)
    assert (stored.review_status, stored.reviewed_by) == (
        ReviewStatus.APPROVED,
        reviewed["supervisor"],
    )
    event = AuditEvent.objects.get(action="interviews.reviewed")
    assert (event.actor_name, event.new["review_status"], event.detail["ids"]) == (
        "bolat",
        "approved",
        [stored.pk],
    )


def test_sending_back_puts_the_comments_on_the_enumerators_tablet(client, reviewed):
    client.force_login(reviewed["supervisor"])
    instance_id = reviewed["ids"][1]
    client.post(
        f"/review/{instance_id}/decide",
        {"decision": "reject", "comment": "Түнде жүргізілген бе?", "q:age": "Жасын тексеріңіз"},
    )
    stored = Submission.objects.get(instance_id=instance_id)
    assert stored.review_status == ReviewStatus.REJECTED
    assert stored.question_comments == {"age": "Жасын тексеріңіз"}
    from rest_framework.test import APIClient

    _, token = bearer(reviewed["enumerator"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    returned = api.get("/api/collect/returned/").json()
    body = returned if isinstance(returned, list) else returned.get("results", returned)
    assert "Жасын тексеріңіз" in str(body) and "Түнде" in str(body)


def test_enumerators_and_anonymous_users_cannot_review(client, reviewed):
    assert client.get("/review/").status_code == 302  # to the login
    client.force_login(reviewed["enumerator"])
    assert client.get("/review/").status_code == 403
    assert (
        client.post(f"/review/{reviewed['ids'][0]}/decide", {"decision": "approve"}).status_code
        == 403
    )
    assert Submission.objects.get(instance_id=reviewed["ids"][0]).review_status == "pending"


def test_an_unknown_interview_is_404(client, reviewed):
    client.force_login(reviewed["supervisor"])
    assert client.get(f"/review/{uuid.uuid4()}/").status_code == 404


def _gps_interview(*, record_gps: bool, north_km: float, coordinates: bool = True):
    wave = tablet_wave("GPS")
    if record_gps:
        CollectSettings.objects.update_or_create(survey=wave.survey, defaults={"record_gps": True})
    enumerator = user_in("enumerator", "dana", survey=wave.survey)
    place = {"latitude": 43.25, "longitude": 76.95} if coordinates else {}
    assignment = assignment_for(enumerator, wave, **place)
    device, _ = bearer(enumerator)
    fix = {"lat": 43.25 + north_km / 111.1951, "lon": 76.95, "accuracy": 8.0}
    body = item(assignment)
    body["paradata"]["gps"] = fix
    (result,) = sync_interviews(device=device, items=[body])
    assert result["status"] == "stored"
    return result["instance_id"], user_in("supervisor", "erlan", survey=wave.survey)


def test_an_interview_recorded_far_from_its_settlement_is_flagged_with_the_reason(client):
    instance_id, supervisor = _gps_interview(record_gps=True, north_km=25)
    client.force_login(supervisor)
    html = client.get("/review/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Recorded 25.0 km from the assigned settlement Алматы (the limit is 10 km)" in html
    flagged = client.get("/review/?status=pending&flagged=on").content.decode()
    assert instance_id[:8] in flagged
    detail = client.get(f"/review/{instance_id}/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Записано в 25,0 км от назначенного населённого пункта Алматы" in detail


@pytest.mark.parametrize(
    ("record_gps", "north_km", "coordinates"),
    [(True, 8, True), (False, 25, True), (True, 25, False)],
    ids=["within the limit", "gps off", "settlement place unknown"],
)
def test_no_distance_flag_within_the_limit_without_gps_or_without_a_place(
    client, record_gps, north_km, coordinates
):
    instance_id, supervisor = _gps_interview(
        record_gps=record_gps, north_km=north_km, coordinates=coordinates
    )
    client.force_login(supervisor)
    html = client.get("/review/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert instance_id[:8] in html
    assert "from the assigned settlement" not in html


def test_the_survey_sets_its_own_distance_limit(client):
    instance_id, supervisor = _gps_interview(record_gps=True, north_km=25)
    CollectSettings.objects.filter(survey__waves__code="GPS").update(gps_distance_km=30)
    client.force_login(supervisor)
    html = client.get("/review/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert instance_id[:8] in html and "from the assigned settlement" not in html
