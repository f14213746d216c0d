"""A tablet sending one interview a request (`collect.sync_one`, PostgreSQL): the results of
a batch, in two statements, and one stored copy when the same interview races itself."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from collect import sync_one
from collect.models import TabletInterview
from surveys.models import Submission
from tests.collect.collect_fixtures import assignment_for, bearer, item, tablet_wave, user_in
from tests.conftest import need

SYNC = "/api/collect/sync/"


@pytest.fixture
def one(db):
    need(connection.vendor == "postgresql", "the one-statement path needs PostgreSQL")
    wave = tablet_wave()
    enumerator = user_in("enumerator", "aigerim")
    assignment = assignment_for(enumerator, wave)
    device, token = bearer(enumerator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return wave, enumerator, assignment, device, client


def send(client: APIClient, interview) -> dict:  # type: ignore[no-untyped-def]
    response = client.post(SYNC, {"interviews": [interview]}, format="json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    (result,) = response.json()["results"]
    return result


def test_one_interview_takes_a_lookup_and_an_insert(
    one, django_assert_num_queries, django_capture_on_commit_callbacks
):
    wave, enumerator, assignment, device, client = one
    send(client, item(assignment))  # the device's last-seen time and the version's cache
    interview = item(assignment)
    with (
        django_capture_on_commit_callbacks() as marks,
        django_assert_num_queries(2) as queries,
    ):
        result = send(client, interview)
    assert result == {"instance_id": interview["instance_id"], "status": "stored"}
    assert queries.captured_queries[1]["sql"].startswith("WITH s AS (INSERT INTO")
    assert len(marks) == 1  # the recomputation mark, after the commit
    stored = Submission.objects.get(instance_id=interview["instance_id"])
    assert (stored.channel, stored.enumerator, stored.device_id, stored.form_version_id) == (
        "tablet",
        enumerator,
        str(device.pk),
        assignment.form_version_id,
    )
    assert (stored.region.code, stored.psu, stored.urban_rural, stored.stratum) == (
        "KZ-75",
        "PSU-7",
        1,
        "KZ-75-U",
    )
    assert stored.answers == {"q1": 1, "age": 34} and stored.duration_seconds == 12 * 60
    assert stored.tablet.paradata == {
        "started_at": "2026-05-04T10:00:00+00:00",
        "ended_at": "2026-05-04T10:12:00+00:00",
        "pages": {"1": 30.5, "2": 40.0},
        "changes": 1,
    }
    assert (stored.tablet.device, stored.tablet.assignment, stored.tablet.over_quota) == (
        device,
        assignment,
        False,
    )


def test_each_result_of_a_batch_comes_back_for_one_interview(one):
    wave, enumerator, assignment, device, client = one
    first = item(assignment)
    assert send(client, first)["status"] == "stored"
    assert send(client, first) == {"instance_id": first["instance_id"], "status": "duplicate"}
    conflict = send(client, dict(first, answers={"q1": "2", "age": "40"}))
    assert conflict["status"] == "conflict" and conflict["message"]
    invalid = send(client, item(assignment, answers={"q1": "1", "age": "7"}, language="ru"))
    assert invalid["status"] == "invalid"
    assert list(invalid["errors"]) == ["age"]
    required = send(client, item(assignment, answers={"q1": "1"}, language="ru"))
    assert required["errors"] == {"age": ["На этот вопрос необходимо ответить."]}
    foreign = assignment_for(user_in("enumerator", "bolat"), wave)
    refusals = [
        (item(foreign), "not_your_assignment"),
        (dict(item(assignment), assignment=True), "not_your_assignment"),  # True: not an id
        (item(assignment, form_version=999999), "unknown_form_version"),
        (item(assignment, form_version=True), "unknown_form_version"),
        (item(assignment, paradata={}), "paradata"),
        (item(assignment, instance_id="not-a-uuid"), "instance_id"),
    ]
    for interview, code in refusals:
        result = send(client, interview)
        assert (result["status"], result["code"]) == ("refused", code), interview
    assert Submission.objects.count() == 1 and TabletInterview.objects.count() == 1
    assert Submission.objects.get().answers == {"q1": 1, "age": 34}


def test_a_quota_counts_one_interview_a_request(one):
    wave, enumerator, _, device, client = one
    small = assignment_for(enumerator, wave, quota=2)
    flags = [send(client, item(small)).get("over_quota", False) for _ in range(3)]
    assert flags == [False, False, True]
    assert TabletInterview.objects.filter(assignment=small, over_quota=True).count() == 1


def test_a_token_that_does_not_authenticate_gets_the_apis_401(one):
    wave, enumerator, assignment, device, client = one
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {device.token_prefix}.not-the-secret-00000000")
    response = stranger.post(SYNC, {"interviews": [item(assignment)]}, format="json")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"
    assert not Submission.objects.exists()


@pytest.fixture
def racing(transactional_db):
    need(connection.vendor == "postgresql", "concurrent writes need PostgreSQL")
    wave = tablet_wave()
    enumerator = user_in("enumerator", "aigerim")
    return assignment_for(enumerator, wave), bearer(enumerator)[0]


def test_the_same_interview_sent_at_once_is_stored_once(racing):
    assignment, device = racing
    interview = item(assignment)
    copies = 4
    barrier = threading.Barrier(copies)
    results: list[dict] = []
    failures: list[BaseException] = []

    def send_one() -> None:
        try:
            found_device, found = sync_one.find_for_tablet(
                token_prefix=device.token_prefix, item=interview
            )
            assert found_device is not None
            barrier.wait()  # every copy looked up before any is stored
            results.append(
                sync_one.store(device=found_device, item=interview, found=found, channel="tablet")
            )
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send_one) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert sorted(r["status"] for r in results) == ["duplicate"] * (copies - 1) + ["stored"]
    assert Submission.objects.count() == 1 and TabletInterview.objects.count() == 1
