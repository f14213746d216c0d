"""The tablet API: enrolment, assignments, questionnaires, sync, returned interviews."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from collect.models import Device, TabletInterview
from collect.services import make_enrolment_code, revoke_device, send_back
from surveys.models import Submission
from tests.collect.collect_fixtures import (
    assignment_for,
    bearer,
    item,
    tablet_version,
    tablet_wave,
    user_in,
)

pytestmark = pytest.mark.django_db

SYNC = "/api/collect/sync/"


def client_for(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def sync(client: APIClient, items: list) -> list[dict]:
    response = client.post(SYNC, {"interviews": items}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"]


@pytest.fixture
def field():
    wave = tablet_wave()
    enumerator = user_in("enumerator", "aigerim")
    assignment = assignment_for(enumerator, wave)
    device, token = bearer(enumerator)
    return wave, enumerator, assignment, device, client_for(token)


def test_enrol_with_password_returns_a_token_stored_only_hashed():
    user_in("enumerator", "aigerim", password="s3cret-pass", survey=tablet_wave().survey)
    response = APIClient().post(
        "/api/collect/devices/",
        {"username": "aigerim", "password": "s3cret-pass", "label": "Samsung A8"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    device = Device.objects.get(pk=body["device_id"])
    assert body["token"] not in (device.token_hash, device.token_prefix)
    assert body["token"].startswith(device.token_prefix + ".")
    assert AuditEvent.objects.filter(
        action=AuditAction.DEVICE_ENROLLED, object_id=str(device.pk)
    ).exists()
    assert client_for(body["token"]).get("/api/collect/assignments/").status_code == 200


def test_enrol_refuses_a_wrong_password_and_a_non_enumerator():
    user_in("enumerator", "aigerim", password="s3cret-pass")
    user_in("researcher", "dana", password="s3cret-pass")
    wrong = APIClient().post(
        "/api/collect/devices/", {"username": "aigerim", "password": "nope"}, format="json",
        HTTP_ACCEPT_LANGUAGE="ru",
    )  # fmt: skip
    assert wrong.status_code == 400 and wrong.json()["code"] == "credentials"
    assert wrong.json()["message"] == "Неверное имя пользователя или пароль."
    other = APIClient().post(
        "/api/collect/devices/", {"username": "dana", "password": "s3cret-pass"}, format="json"
    )
    assert other.status_code == 403 and other.json()["code"] == "not_enumerator"
    assert not Device.objects.exists()


def test_enrolment_by_code_is_single_use():
    survey = tablet_wave().survey
    enumerator = user_in("enumerator", "aigerim", survey=survey)
    supervisor = user_in("supervisor", "saule", survey=survey)
    staff = APIClient()
    staff.force_authenticate(supervisor)
    made = staff.post("/api/collect/enrolment-codes/", {"enumerator": "aigerim"}, format="json")
    assert made.status_code == 201
    code = made.json()["code"]
    assert made.json()["qr_svg"].startswith("<svg") or "<svg" in made.json()["qr_svg"][:200]
    first = APIClient().post("/api/collect/devices/", {"code": code.lower()}, format="json")
    assert first.status_code == 201
    assert Device.objects.get(pk=first.json()["device_id"]).enumerator == enumerator
    again = APIClient().post("/api/collect/devices/", {"code": code}, format="json")
    assert again.status_code == 400 and again.json()["code"] == "code_used"
    assert Device.objects.count() == 1
    # An enumerator cannot make codes.
    other = APIClient()
    other.force_authenticate(enumerator)
    assert other.post("/api/collect/enrolment-codes/", {"enumerator": "aigerim"}).status_code == 403


def test_expired_code_is_refused():
    import datetime as dt

    survey = tablet_wave().survey
    enumerator = user_in("enumerator", "aigerim", survey=survey)
    _, code = make_enrolment_code(
        enumerator=enumerator,
        created_by=user_in("supervisor", "saule", survey=survey),
        lifetime=dt.timedelta(0),
    )
    response = APIClient().post("/api/collect/devices/", {"code": code}, format="json")
    assert response.json()["code"] == "code_expired"


def test_assignments_list_progress(field, django_assert_max_num_queries):
    wave, enumerator, assignment, device, client = field
    other = user_in("enumerator", "bolat")
    assignment_for(other, wave)
    sync(client, [item(assignment), item(assignment)])
    with django_assert_max_num_queries(4):
        rows = client.get("/api/collect/assignments/").json()
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == assignment.pk and row["form_version"] == wave.form_version_id
    assert (row["quota"], row["done"], row["accepted"]) == (-1, 2, 0)
    assert row["region"] == "KZ-75" and row["prefilled"] == {"URBAN": 1}
    assert row["survey"] == "tablet" and row["wave"] == "T1"


def test_form_version_has_what_the_app_needs_offline(field):
    wave, *_, client = field
    body = client.get(f"/api/collect/form-versions/{wave.form_version_id}/").json()
    assert body["languages"] == ["kk", "ru", "en"]
    assert body["definition"] == wave.form_version.definition
    assert set(body["logic"]) == {"kk", "ru", "en"} and body["logic"]["ru"]["nodes"]
    assert body["messages"]["ru"]["required"] == "На этот вопрос необходимо ответить."
    assert body["pages"]["en"] == f"/collect/form/{wave.form_version_id}/?lang=en"
    assert body["record_gps"] is False
    page = client.get(body["pages"]["ru"])
    assert page.status_code == 200 and "Вопрос" in page.content.decode()
    assert APIClient().get(body["pages"]["ru"]).status_code == 401


def test_a_mixed_batch_gets_one_result_per_item_in_order(field):
    wave, enumerator, assignment, device, client = field
    stored_before = item(assignment)
    assert sync(client, [stored_before])[0]["status"] == "stored"
    foreign = assignment_for(user_in("enumerator", "bolat"), wave)
    conflicting = dict(stored_before, answers={"q1": "2", "age": "40"})
    batch = [
        item(assignment),  # valid
        item(assignment, answers={"q1": "1", "age": "7"}, language="ru"),  # invalid
        stored_before,  # duplicate
        conflicting,  # conflict
        item(foreign),  # not your assignment
        item(assignment, form_version=999999),  # unknown form version
        "not an object",
        item(assignment, paradata={}),  # no times
        item(assignment),  # valid, after the bad ones
    ]
    results = sync(client, batch)
    assert [r["status"] for r in results] == [
        "stored", "invalid", "duplicate", "conflict", "refused", "refused", "refused",
        "refused", "stored",
    ]  # fmt: skip
    assert [r["instance_id"] for r in results[:6]] == [b["instance_id"] for b in batch[:6]]
    assert list(results[1]["errors"]) == ["age"]
    assert results[4]["code"] == "not_your_assignment"
    assert results[5]["code"] == "unknown_form_version"
    assert results[6]["code"] == "malformed"
    assert results[7]["code"] == "paradata"
    assert Submission.objects.count() == 3
    stored = Submission.objects.get(instance_id=batch[0]["instance_id"])
    assert (stored.channel, stored.enumerator, stored.device_id) == (
        "tablet",
        enumerator,
        str(device.pk),
    )
    assert (stored.region.code, stored.psu, stored.urban_rural) == ("KZ-75", "PSU-7", 1)
    assert stored.duration_seconds == 12 * 60
    paradata = stored.tablet.paradata
    assert paradata["pages"] == {"1": 30.5, "2": 40.0}
    assert "ip" not in paradata and "user_agent" not in paradata
    # The conflicting resend changed nothing.
    assert Submission.objects.get(instance_id=stored_before["instance_id"]).answers == {
        "q1": 1,
        "age": 34,
    }


def test_invalid_errors_are_in_the_interview_language(field):
    *_, assignment, _, client = field
    [result] = sync(client, [item(assignment, answers={"q1": "1"}, language="ru")])
    assert result["status"] == "invalid"
    assert result["errors"] == {"age": ["На этот вопрос необходимо ответить."]}


def test_the_same_batch_twice_stores_nothing_new(field):
    *_, assignment, _, client = field
    batch = [item(assignment) for _ in range(3)]
    assert {r["status"] for r in sync(client, batch)} == {"stored"}
    assert {r["status"] for r in sync(client, batch)} == {"duplicate"}
    assert Submission.objects.count() == 3 and TabletInterview.objects.count() == 3


def test_an_old_form_version_is_accepted_and_tied_to_it(field):
    wave, enumerator, assignment, device, client = field
    old = wave.form_version
    new = tablet_version("2")
    wave.form_version = new
    wave.save()
    results = sync(
        client, [item(assignment, form_version=old.pk), item(assignment, form_version=new.pk)]
    )
    assert [r["status"] for r in results] == ["stored", "stored"]
    versions = {str(s.instance_id): s.form_version_id for s in Submission.objects.all()}
    assert sorted(versions.values()) == sorted([old.pk, new.pk])


def test_over_quota_interviews_are_stored_and_flagged(field):
    wave, enumerator, _, device, client = field
    small = assignment_for(enumerator, wave, quota=2)
    results = sync(client, [item(small) for _ in range(3)])
    assert [r["status"] for r in results] == ["stored"] * 3
    assert [r.get("over_quota", False) for r in results] == [False, False, True]
    assert TabletInterview.objects.filter(assignment=small, over_quota=True).count() == 1
    assert Submission.objects.count() == 3


def test_a_revoked_device_gets_401_device_revoked(field):
    *_, assignment, device, client = field
    revoke_device(device=device, actor=user_in("supervisor", "saule"))
    response = client.post(SYNC, {"interviews": [item(assignment)]}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "device_revoked"
    assert response["WWW-Authenticate"] == "Bearer"
    assert client.get("/api/collect/assignments/").json()["code"] == "device_revoked"
    assert not Submission.objects.exists()
    assert AuditEvent.objects.filter(action=AuditAction.DEVICE_REVOKED).count() == 1


def test_a_wrong_token_gets_401():
    response = client_for("abcdefgh.not-the-secret-at-all-000000").get("/api/collect/assignments/")
    assert response.status_code == 401
    assert APIClient().get("/api/collect/assignments/").status_code == 401


def test_an_oversize_batch_is_413_saying_the_limit(field, settings):
    settings.COLLECT_SYNC_MAX_INTERVIEWS = 3
    *_, assignment, _, client = field
    response = client.post(
        SYNC, {"interviews": [item(assignment) for _ in range(4)]}, format="json"
    )
    assert response.status_code == 413
    assert response.json()["limit"] == 3 and "3" in response.json()["message"]
    assert not Submission.objects.exists()


@pytest.mark.parametrize(
    "body", [[], {"interviews": "x"}, {"items": []}, {"interviews": None}, "text"]
)
def test_a_malformed_envelope_is_400(field, body):
    *_, client = field
    response = client.post(SYNC, json.dumps(body), content_type="application/json")
    assert response.status_code == 400


def test_returned_interview_is_resent_with_replaces_as_a_new_version(field):
    wave, enumerator, assignment, device, client = field
    first = item(assignment)
    sync(client, [first])
    old = Submission.objects.get(instance_id=first["instance_id"])
    supervisor = user_in("supervisor", "saule")
    send_back(
        submission=old,
        reviewer=supervisor,
        comment="Жасы дұрыс па?",
        question_comments={"age": "Тексеріңіз"},
    )
    returned = client.get("/api/collect/returned/").json()
    assert len(returned) == 1
    assert returned[0]["instance_id"] == first["instance_id"]
    assert returned[0]["review_comment"] == "Жасы дұрыс па?"
    assert returned[0]["question_comments"] == {"age": "Тексеріңіз"}
    assert returned[0]["answers"] == {"q1": 1, "age": 34}
    assert returned[0]["assignment"] == assignment.pk
    fixed = item(assignment, answers={"q1": "1", "age": "43"}, replaces=first["instance_id"])
    [result] = sync(client, [fixed])
    assert result["status"] == "stored"
    new = Submission.objects.get(instance_id=fixed["instance_id"])
    assert new.replaces == old
    old.refresh_from_db()
    assert old.review_status == "rejected"
    assert client.get("/api/collect/returned/").json() == []
    # A second correction of the same interview, and a correction of one never sent back, are refused.
    [again] = sync(client, [item(assignment, replaces=first["instance_id"])])
    assert (again["status"], again["code"]) == ("refused", "replaces_not_returned")
    [never] = sync(client, [item(assignment, replaces=fixed["instance_id"])])
    assert never["code"] == "replaces_not_returned"
    # Resending the fix is a duplicate.
    assert sync(client, [fixed])[0]["status"] == "duplicate"
    assert Submission.objects.count() == 2


def test_another_enumerator_cannot_replace_my_interview(field):
    wave, enumerator, assignment, device, client = field
    first = item(assignment)
    sync(client, [first])
    send_back(
        submission=Submission.objects.get(instance_id=first["instance_id"]),
        reviewer=user_in("supervisor", "saule"),
    )
    other = user_in("enumerator", "bolat")
    theirs = assignment_for(other, wave)
    _, token = bearer(other)
    [result] = sync(client_for(token), [item(theirs, replaces=first["instance_id"])])
    assert result["code"] == "replaces_not_returned"


def test_the_instrument_through_the_api():
    from tests.surveys.webform_fixtures import complete_answers, instrument_wave

    wave = instrument_wave()
    enumerator = user_in("enumerator", "aigerim")
    assignment = assignment_for(enumerator, wave)
    _, token = bearer(enumerator)
    answers = {k: v for k, v in complete_answers().items()}
    [ok, bad] = sync(client_for(token), [
        item(assignment, answers=answers, language="en"),
        item(assignment, answers={**answers, "BIRTH_YEAR": "2015"}, language="en"),
    ])  # fmt: skip
    assert ok["status"] == "stored", ok
    assert bad["status"] == "invalid" and "BIRTH_YEAR" in bad["errors"]


def test_schema_documents_the_collect_paths():
    staff = APIClient()
    staff.force_authenticate(user_in("admin", "root"))
    schema = staff.get("/api/schema/?format=json").json()
    for path in ("devices/", "assignments/", "form-versions/{id}/", "sync/", "returned/"):
        assert f"/api/collect/{path}" in schema["paths"]


def test_a_batch_marks_its_wave_dirty_once(field, django_capture_on_commit_callbacks):
    from analytics.models import WaveComputation

    wave, *_, assignment, _, client = field
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        sync(client, [item(assignment) for _ in range(5)])
    assert len(callbacks) == 1
    callbacks[0]()
    assert WaveComputation.objects.get(wave=wave).dirty


def test_gps_is_kept_only_where_the_survey_records_it(field):
    from collect.models import CollectSettings

    wave, *_, assignment, _, client = field
    fix = {"lat": 43.25, "lon": 76.91, "accuracy": 12.0, "at": "2026-05-04T10:01:00+00:00"}
    off = item(assignment)
    off["paradata"]["gps"] = fix
    sync(client, [off])
    assert "gps" not in Submission.objects.get(instance_id=off["instance_id"]).tablet.paradata
    CollectSettings.objects.create(survey=wave.survey, record_gps=True)
    assert client.get(f"/api/collect/form-versions/{wave.form_version_id}/").json()["record_gps"]
    on = item(assignment)
    on["paradata"]["gps"] = fix
    sync(client, [on])
    assert Submission.objects.get(instance_id=on["instance_id"]).tablet.paradata["gps"] == fix


def test_the_app_shell_manifest_and_service_worker(client):
    page = client.get("/collect/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<link rel="manifest" href="/collect/manifest.webmanifest">' in html
    assert "<script>" not in html  # no inline script: the page works under default-src 'self'
    manifest = client.get("/collect/manifest.webmanifest").json()
    assert manifest["scope"] == "/collect/" and manifest["display"] == "standalone"
    assert any(icon["sizes"] == "192x192" for icon in manifest["icons"])
    worker = client.get("/collect/sw.js")
    assert worker["Content-Type"].startswith("text/javascript")
    text = worker.content.decode()
    assert "const SHELL = 'tanys-shell-' + VERSION;" in text and "__APP_VERSION__" not in text


def test_supervisor_page_makes_a_code_with_its_qr(client):
    survey = tablet_wave().survey
    enumerator = user_in("enumerator", "aigerim", survey=survey)
    client.force_login(user_in("supervisor", "saule", survey=survey))
    page = client.get("/collect/enrolment-code/")
    assert page.status_code == 200 and "aigerim" in page.content.decode()
    made = client.post("/collect/enrolment-code/", {"enumerator": enumerator.pk})
    html = made.content.decode()
    code = made.context["code"]
    assert code in html and "<svg" in html and f"/collect/?code={code}" in html
    response = APIClient().post("/api/collect/devices/", {"code": code}, format="json")
    assert response.status_code == 201
    other = APIClient()
    other.force_login(enumerator)
    assert other.get("/collect/enrolment-code/").status_code == 403


def test_a_supervisor_imports_an_enumerators_interviews_as_theirs(field):
    wave, enumerator, assignment, device, client = field
    exported = item(assignment)
    supervisor = user_in("supervisor", "saule", survey=wave.survey)
    office, token = bearer(supervisor)
    [result] = sync(client_for(token), [exported])
    assert result["status"] == "stored"
    stored = Submission.objects.get(instance_id=exported["instance_id"])
    assert stored.enumerator == enumerator and stored.device_id == str(office.pk)
    # The tablet sends its own copy later: the same interview, nothing stored twice.
    assert sync(client, [exported])[0]["status"] == "duplicate"
    assert Submission.objects.count() == 1
