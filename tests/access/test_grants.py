"""Role grants: made and withdrawn by superusers only, audited in the same transaction,
kept consistent by the database."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import translation

from access.models import RoleGrant
from access.services import GrantError, GrantForbidden, grant_role, revoke_role
from audit.models import AuditAction, AuditEvent
from surveys.models import Region
from tests.factories import SurveyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root():
    return get_user_model().objects.create_superuser("root", "root@example.org", "pw-4b1c9e2")


@pytest.fixture
def person():
    return get_user_model().objects.create_user("aigul", "aigul@example.org", "pw-8d3f0a1")


def test_a_grant_is_audited_with_its_new_value_and_opens_the_role_group(root, person):
    survey = SurveyFactory(code="networks")
    grant = grant_role(user=person, role="researcher", survey=survey, level="aggregates", by=root)
    event = AuditEvent.objects.get(action=AuditAction.ROLE_GRANTED)
    assert (event.actor, event.survey_id, event.object_id) == (root, survey.pk, str(grant.pk))
    assert event.old is None
    assert event.new == {
        "user": "aigul",
        "user_id": person.pk,
        "role": "researcher",
        "survey": "networks",
        "level": "aggregates",
        "regions": [],
    }
    assert person.groups.filter(name="researcher").exists()
    assert person.has_perm("surveys.view_estimates")


def test_granting_again_changes_the_grant_and_records_old_and_new(root, person):
    survey = SurveyFactory()
    almaty, astana = (Region.objects.get(geography="KZ2022", code=c) for c in ("KZ-75", "KZ-71"))
    first = grant_role(user=person, role="supervisor", survey=survey, regions=[almaty], by=root)
    second = grant_role(
        user=person, role="supervisor", survey=survey, regions=[almaty, astana], by=root
    )
    assert first.pk == second.pk and RoleGrant.objects.count() == 1
    assert set(second.regions.values_list("code", flat=True)) == {"KZ-75", "KZ-71"}
    event = AuditEvent.objects.filter(action=AuditAction.ROLE_GRANTED).order_by("id").last()
    assert event.old["regions"] == ["KZ2022:KZ-75"]
    assert event.new["regions"] == ["KZ2022:KZ-71", "KZ2022:KZ-75"]


def test_revoking_is_audited_and_the_last_grant_of_a_role_closes_its_group(root, person):
    one, two = SurveyFactory(), SurveyFactory()
    first = grant_role(user=person, role="enumerator", survey=one, by=root)
    second = grant_role(user=person, role="enumerator", survey=two, by=root)
    revoke_role(grant=first, by=root)
    assert person.groups.filter(name="enumerator").exists()  # still holds the other survey
    revoke_role(grant=second, by=root)
    assert not person.groups.filter(name="enumerator").exists()
    assert not RoleGrant.objects.exists()
    events = AuditEvent.objects.filter(action=AuditAction.ROLE_REVOKED).order_by("id")
    assert [e.old["survey"] for e in events] == [one.code, two.code]
    assert all(e.new is None and e.actor == root for e in events)


def test_only_superusers_grant_or_revoke(root, person):
    survey = SurveyFactory()
    admin_user = get_user_model().objects.create_user(
        "boss", "b@example.org", "pw-1", is_staff=True
    )
    grant_role(user=admin_user, role="admin", survey=None, by=root)
    with pytest.raises(GrantForbidden):
        grant_role(user=person, role="admin", survey=survey, by=admin_user)
    with pytest.raises(GrantForbidden):
        grant_role(user=admin_user, role="admin", survey=None, by=person)
    grant = RoleGrant.objects.get()
    with pytest.raises(GrantForbidden):
        revoke_role(grant=grant, by=admin_user)
    assert RoleGrant.objects.count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.ROLE_REVOKED).count() == 0


@pytest.mark.parametrize(
    ("role", "survey", "level", "regions", "words"),
    [
        ("researcher", True, "", False, "level"),
        ("supervisor", True, "", False, "regions"),
        ("enumerator", False, "", False, "survey"),
        ("enumerator", True, "microdata", False, "level"),
        ("researcher", True, "aggregates", True, "regions"),
        ("owner", True, "", False, "Unknown role"),
    ],
)
def test_an_inconsistent_grant_is_refused_and_writes_nothing(
    root, person, role, survey, level, regions, words
):
    with pytest.raises(GrantError, match=words), translation.override("en"):
        grant_role(
            user=person,
            role=role,
            survey=SurveyFactory() if survey else None,
            level=level,
            regions=Region.objects.all()[:1] if regions else (),
            by=root,
        )
    assert not RoleGrant.objects.exists() and not AuditEvent.objects.exists()
    assert not person.groups.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"role": "researcher", "level": ""},  # a researcher without a level
        {"role": "enumerator", "level": "microdata"},  # a level on another role
        {"role": "supervisor", "survey": None},  # only administrators span every survey
        {"role": "janitor"},
    ],
)
def test_the_database_refuses_an_inconsistent_grant(person, fields):
    values = {"user": person, "role": "researcher", "survey": SurveyFactory(), "level": ""}
    values.update(fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        RoleGrant.objects.create(**values)


def test_the_database_holds_one_grant_of_a_role_per_user_and_survey(person):
    survey = SurveyFactory()
    RoleGrant.objects.create(user=person, role="researcher", survey=survey, level="aggregates")
    with pytest.raises(IntegrityError), transaction.atomic():
        RoleGrant.objects.create(user=person, role="researcher", survey=survey, level="microdata")
    RoleGrant.objects.create(user=person, role="admin", survey=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        RoleGrant.objects.create(user=person, role="admin", survey=None)


def test_superusers_manage_grants_in_the_admin_and_each_change_is_audited(client, root, person):
    survey = SurveyFactory()
    client.force_login(root)
    region = Region.objects.get(geography="KZ2022", code="KZ-75")
    response = client.post(
        "/admin/access/rolegrant/add/",
        {
            "user": person.pk,
            "role": "supervisor",
            "survey": survey.pk,
            "level": "",
            "regions": [region.pk],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    grant = RoleGrant.objects.get()
    assert list(grant.regions.all()) == [region]
    refused = client.post(
        "/admin/access/rolegrant/add/",
        HTTP_ACCEPT_LANGUAGE="en",
        data={"user": person.pk, "role": "supervisor", "survey": survey.pk, "level": ""},
    )
    assert refused.status_code == 200 and "one or more regions" in refused.content.decode()
    client.post(f"/admin/access/rolegrant/{grant.pk}/delete/", {"post": "yes"})
    assert not RoleGrant.objects.exists()
    assert list(AuditEvent.objects.order_by("id").values_list("action", "actor_id")) == [
        (AuditAction.ROLE_GRANTED, root.pk),
        (AuditAction.ROLE_REVOKED, root.pk),
    ]
