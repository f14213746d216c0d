"""The field work pages (review, ODK devices, enrolment codes, assignments) reach only the
surveys and regions of the requester's grants, not every interview the global permission
would name."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from access.services import grant_role
from collect.models import Assignment, Device
from odk.services import create_odk_device
from surveys.models import Channel, ReviewStatus
from tests.access.access_world import build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = build_world()
    # Both interviews of survey A were collected in the field: region A and region B.
    for interview in (world.interview_a, world.interview_b):
        interview.channel = Channel.ODK
        interview.save(update_fields=["channel"])
    # An enumerator of survey B with an ODK Collect device.
    outsider = get_user_model().objects.create_user("enumerator_b", password="x-pass-5521")
    grant_role(user=outsider, role="enumerator", survey=world.survey_b)
    world.users["enumerator_b"] = outsider
    world.objects["device_b"] = create_odk_device(
        enumerator=outsider, actor=world.users["superuser"], label="tab-b"
    )[0]
    return world


def signed_in(client, world, role):  # type: ignore[no-untyped-def]
    client.force_login(world.users[role])
    return client


def test_a_supervisor_reviews_only_the_interviews_of_their_region(client, world):
    signed_in(client, world, "supervisor")
    mine, theirs = world.interview_a.instance_id, world.interview_b.instance_id
    queue = client.get("/review/", {"status": ""})
    assert queue.status_code == 200
    listed = {item.submission.instance_id for item, _flags in queue.context["items"]}
    assert listed == {mine}
    assert client.get(f"/review/{mine}/").status_code == 200
    assert client.get(f"/review/{theirs}/").status_code == 404
    refused = client.post(f"/review/{theirs}/decide", {"decision": "approve"})
    assert refused.status_code == 404
    world.interview_b.refresh_from_db()
    assert world.interview_b.review_status == ReviewStatus.PENDING


def test_the_admin_of_the_survey_reviews_every_region(client, world):
    signed_in(client, world, "admin")
    queue = client.get("/review/", {"status": ""})
    listed = {item.submission.instance_id for item, _flags in queue.context["items"]}
    assert listed == {world.interview_a.instance_id, world.interview_b.instance_id}
    assert client.get(f"/review/{world.interview_b.instance_id}/").status_code == 200


def test_the_odk_devices_page_shows_only_the_enumerators_of_the_supervisors_surveys(client, world):
    signed_in(client, world, "supervisor")
    page = client.get("/odk/devices/")
    assert page.status_code == 200
    assert [d.pk for d in page.context["devices"]] == [world.device.pk]
    offered = set(page.context["form"].fields["enumerator"].queryset)
    assert offered == {world.users["enumerator"]}
    outsider = world.users["enumerator_b"]
    made = client.post("/odk/devices/", {"enumerator": outsider.pk, "label": "x"})
    assert made.status_code == 200 and made.context["form"].errors
    assert not Device.objects.filter(enumerator=outsider, label="x").exists()
    device_b = world.objects["device_b"]
    assert client.post(f"/odk/devices/{device_b.pk}/revoke").status_code == 404
    device_b.refresh_from_db()
    assert device_b.revoked_at is None


def test_a_superuser_sees_every_odk_device(client, world):
    signed_in(client, world, "superuser")
    page = client.get("/odk/devices/")
    assert {d.pk for d in page.context["devices"]} == {
        world.device.pk,
        world.objects["device_b"].pk,
    }


def test_enrolment_codes_and_revocation_only_for_the_supervisors_enumerators(world):
    api = APIClient()
    api.force_authenticate(world.users["supervisor"])
    made = api.post("/api/collect/enrolment-codes/", {"enumerator": "enumerator_b"}, format="json")
    assert made.status_code == 404
    ours = api.post("/api/collect/enrolment-codes/", {"enumerator": "enumerator"}, format="json")
    assert ours.status_code == 201
    device_b = world.objects["device_b"]
    assert api.post(f"/api/collect/devices/{device_b.pk}/revoke/").status_code == 404
    device_b.refresh_from_db()
    assert device_b.revoked_at is None


def test_the_enrolment_code_page_offers_only_the_supervisors_enumerators(client, world):
    signed_in(client, world, "supervisor")
    page = client.get("/collect/enrolment-code/")
    assert list(page.context["enumerators"]) == [world.users["enumerator"]]
    refused = client.post(
        "/collect/enrolment-code/", {"enumerator": world.users["enumerator_b"].pk}
    )
    assert "code" not in refused.context


def test_a_supervisor_assigns_work_only_in_their_region(world):
    api = APIClient()
    api.force_authenticate(world.users["supervisor"])
    survey = world.survey_a.code
    text = f"enumerator,survey,wave,region\nenumerator,{survey},A1,{world.region_b.code}\n"
    before = Assignment.objects.count()
    response = api.post(
        "/api/collect/assignments/upload/",
        {"file": SimpleUploadedFile("a.csv", text.encode(), "text/csv")},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        f"Row 2: You may not assign interviews in region {world.region_b.code} of survey {survey}."
    ]
    assert Assignment.objects.count() == before


def test_an_administrator_without_a_field_grant_enrols_no_tablet(world):
    api = APIClient()
    api.force_authenticate(world.users["admin"])
    response = api.post("/api/collect/devices/", {"label": "office"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "not_enumerator"
    assert not Device.objects.filter(enumerator=world.users["admin"]).exists()


def test_a_supervisor_imports_exported_interviews_of_their_region_only(world):
    from collect.services import create_assignment, enrol_device
    from collect.sync import sync_interviews
    from tests.collect.collect_fixtures import item

    root = world.users["superuser"]
    enumerator = world.users["enumerator"]
    elsewhere = create_assignment(
        enumerator=enumerator, wave=world.wave_a, region=world.region_b, created_by=root
    )
    office, _token = enrol_device(enumerator=world.users["supervisor"], via="password")
    [result] = sync_interviews(device=office, items=[item(elsewhere)])
    assert (result["status"], result["code"]) == ("refused", "not_your_assignment")
