"""Grants narrow the global permissions to surveys and regions, in every reader."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from access.permissions import Capability, may, submissions_for, surveys_for
from access.services import revoke_role
from analytics.models import IndicatorEstimate
from surveys.models import FormVersion, Submission
from tests.access.access_world import build_world
from tests.factories import SIMPLE_FORM, build_xlsform

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


def api(user):  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_group_member_without_a_grant_reaches_no_survey(world, client):
    member = get_user_model().objects.create_user("member", "m@example.org", "pw-5c7e")
    member.groups.add(Group.objects.get(name="researcher"))
    assert member.has_perm("surveys.view_estimates")  # the coarse gate is open...
    assert not may(member, Capability.VIEW_ESTIMATES)  # ...but no survey is granted
    assert api(member).get("/api/estimates/").status_code == 403
    client.force_login(member)
    assert client.get("/analytics/").status_code == 403


def test_a_grant_without_the_group_permission_opens_nothing(world):
    aggregates = world.users["researcher_aggregates"]
    aggregates.groups.clear()
    aggregates = get_user_model().objects.get(pk=aggregates.pk)
    assert not may(aggregates, Capability.VIEW_ESTIMATES, world.survey_a)


def test_researchers_see_the_estimates_of_their_surveys_only(world):
    other = world.users["researcher_other"]
    rows = api(other).get("/api/estimates/", {"page_size": 1000}).json()
    assert rows["count"] == IndicatorEstimate.objects.filter(wave=world.wave_b).count() > 0
    assert {r["wave"] for r in rows["results"]} == {"B1"}
    comparison = api(other).get("/api/comparison/").json()
    assert {(r["survey"], r["wave"]) for r in comparison["results"]} == {("other", "B1")}
    assert api(other).get("/api/comparison/", {"wave": world.wave_a.pk}).status_code == 403
    assert [s["code"] for s in api(other).get("/api/surveys/").json()["results"]] == ["other"]
    assert list(surveys_for(other, Capability.VIEW_ESTIMATES)) == [world.survey_b]


def test_the_dashboard_offers_only_the_users_surveys(world, client):
    client.force_login(world.users["researcher_other"])
    page = client.get("/analytics/")
    assert page.status_code == 200 and page.context["survey"] == world.survey_b
    assert list(page.context["form"].fields["survey"].queryset) == [world.survey_b]
    assert client.get("/analytics/", {"survey": world.survey_a.code}).status_code == 404
    fresh = client.get("/analytics/freshness/", {"wave": [world.wave_a.pk, world.wave_b.pk]})
    assert [w["wave"] for w in fresh.json()["waves"]] == ["B1"]


def test_microdata_needs_the_microdata_level(world, client):
    body = {"waves": [world.wave_a.pk], "file_format": "csv", "language": "en", "values": "codes"}
    client.force_login(world.users["researcher_aggregates"])
    assert client.post("/analytics/microdata/", body).status_code == 403
    assert client.get("/analytics/regional.csv", {"waves": world.wave_a.pk}).status_code == 200
    client.force_login(world.users["researcher_microdata"])
    assert client.post("/analytics/microdata/", body).status_code == 200
    client.force_login(world.users["researcher_other"])  # microdata level, another survey
    assert client.post("/analytics/microdata/", body).status_code == 403
    jobs = api(world.users["researcher_other"]).post(
        "/api/export-jobs/", {"kind": "microdata", **body}, format="json"
    )
    assert jobs.status_code == 403


def test_a_withdrawn_grant_stops_the_download_of_an_earlier_export(world, client):
    owner = world.users["researcher_microdata"]
    client.force_login(owner)
    url = f"/analytics/exports/{world.job.pk}/download/"
    assert client.get(url).status_code == 200
    revoke_role(grant=owner.role_grants.get())
    assert client.get(url).status_code == 403
    assert (
        api(get_user_model().objects.get(pk=owner.pk))
        .get(f"/api/export-jobs/{world.job.pk}/download/")
        .status_code
        == 403
    )


def test_supervisors_review_the_interviews_of_their_regions_only(world, client):
    supervisor = world.users["supervisor"]
    assert list(submissions_for(supervisor, Capability.REVIEW_SUBMISSIONS)) == [world.interview_a]
    assert may(supervisor, Capability.REVIEW_SUBMISSIONS, world.interview_a)
    assert not may(supervisor, Capability.REVIEW_SUBMISSIONS, world.interview_b)
    client.force_login(supervisor)
    listing = client.get("/admin/surveys/submission/")
    assert list(listing.context["cl"].result_list) == [world.interview_a]
    outside = client.get(f"/admin/surveys/submission/{world.interview_b.pk}/change/")
    assert outside.status_code == 302  # "does not exist" for this supervisor
    client.post(
        "/admin/surveys/submission/",
        {"action": "reject", "_selected_action": [world.interview_a.pk, world.interview_b.pk]},
    )
    statuses = dict(Submission.objects.values_list("pk", "review_status"))
    assert statuses == {world.interview_a.pk: "rejected", world.interview_b.pk: "pending"}


def test_enumerators_reach_their_own_interviews_only(world):
    enumerator = world.users["enumerator"]
    own = submissions_for(enumerator, Capability.COLLECT_INTERVIEWS)
    assert list(own) == [world.interview_a]
    assert not may(enumerator, Capability.COLLECT_INTERVIEWS, world.interview_b)
    assert not may(enumerator, Capability.VIEW_ESTIMATES)


def upload(client, code: str):  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile

    content = build_xlsform(**{**SIMPLE_FORM, "settings": [["form_id", "version"], ["up", "9"]]})
    return client.post(
        "/admin/surveys/formversion/upload/",
        {"survey_code": code, "xlsform": SimpleUploadedFile("up.xlsx", content)},
    )


def test_a_supervisor_cannot_upload_a_questionnaire_or_create_a_survey(world, client):
    client.force_login(world.users["supervisor"])
    assert upload(client, "brand-new").status_code == 403
    assert upload(client, world.survey_a.code).status_code == 403
    assert not FormVersion.objects.filter(version="9").exists()


def test_an_administrator_uploads_to_their_survey_but_creates_none(world, client):
    client.force_login(world.users["admin"])
    assert upload(client, "brand-new").status_code == 403  # needs a grant on every survey
    assert upload(client, world.survey_b.code).status_code == 403  # not their survey
    assert upload(client, world.survey_a.code).status_code == 302
    assert FormVersion.objects.get(version="9").survey == world.survey_a
    client.force_login(world.users["superuser"])
    assert upload(client, "brand-new").status_code == 302


def test_staff_without_the_add_permission_cannot_make_links(world, client):
    client.force_login(world.users["supervisor"])
    response = client.post(
        "/admin/surveys/invitationlink/add/",
        {"wave": world.wave_a.pk, "kind": "single", "count": 3},
    )
    assert response.status_code == 403
    assert world.wave_a.links.count() == 1


def test_an_administrator_makes_links_for_their_survey_only(world, client):
    client.force_login(world.users["admin"])
    other = client.post(
        "/admin/surveys/invitationlink/add/",
        {"wave": world.wave_b.pk, "kind": "single", "count": 3},
    )
    assert other.status_code == 200 and b"errorlist" in other.content
    assert world.wave_b.links.count() == 0
    mine = client.post(
        "/admin/surveys/invitationlink/add/",
        {"wave": world.wave_a.pk, "kind": "single", "count": 3},
    )
    assert mine.status_code == 302 and world.wave_a.links.count() == 4
    batch = client.get(mine["Location"])
    assert batch.status_code == 200 and batch.content.count(b"<code>") == 3


def test_a_batch_page_is_for_the_administrators_of_its_survey(world, client):
    from surveys.services import create_link_batch

    event, _links = create_link_batch(wave=world.wave_b, kind="single", count=2)
    client.force_login(world.users["admin"])  # administers survey A only
    assert client.get(f"/admin/surveys/invitationlink/batch/{event.pk}/").status_code == 404
    assert client.get(f"/admin/surveys/invitationlink/batch/{event.pk}/csv/").status_code == 404
    client.force_login(world.users["superuser"])
    assert client.get(f"/admin/surveys/invitationlink/batch/{event.pk}/").status_code == 200


def test_a_regional_job_naming_no_wave_covers_the_users_waves_only(world):
    from analytics.models import ExportJob

    client = api(world.users["researcher_aggregates"])
    created = client.post(
        "/api/export-jobs/", {"kind": "regional", "file_format": "csv"}, format="json"
    )
    assert created.status_code == 201
    assert ExportJob.objects.get(pk=created.json()["id"]).parameters["waves"] == [world.wave_a.pk]


def test_a_job_over_every_wave_is_for_those_granted_every_survey(world, client):
    from django.core.files.base import ContentFile

    from analytics.models import ExportJob

    owner = world.users["researcher_aggregates"]
    job = ExportJob(requested_by=owner, kind="regional", file_format="csv", parameters={})
    job.file.save("tanys-regional-all.csv", ContentFile(b"x\n"), save=False)
    job.status = ExportJob.Status.DONE
    job.save()
    client.force_login(owner)
    assert client.get(f"/analytics/exports/{job.pk}/download/").status_code == 403


def test_a_survey_without_waves_gives_no_job_of_everything(client):
    from tests.analytics.factories_estimates import make_user

    lonely = make_user("lonely", "researcher", surveys=("empty-survey",))
    client = api(lonely)
    response = client.post(
        "/api/export-jobs/", {"kind": "regional", "file_format": "csv"}, format="json"
    )
    assert response.status_code == 400
