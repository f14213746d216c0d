"""A single-use invitation keeps only that it was used, and on which day: neither the link's
record nor its label (which may hold the invitee's address) can be joined to an interview."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from surveys.models import InvitationLink, Submission
from surveys.services import create_links, submit_interview
from tests.surveys.webform_fixtures import complete_answers, instrument_wave

pytestmark = pytest.mark.django_db

ADDRESS = "aigerim.n@example.kz"


@pytest.fixture
def used_link():
    wave = instrument_wave()
    link = create_links(wave=wave, kind="single", label=ADDRESS)[0]
    submission = submit_interview(
        wave=wave,
        answers=complete_answers(),
        channel="web",
        language="kk",
        instance_id=uuid.uuid4(),
        link=link,
    )
    link.refresh_from_db()
    return link, submission


def test_no_column_or_relation_leads_from_a_link_to_an_interview(used_link):
    link, submission = used_link
    related = {f.related_model for f in InvitationLink._meta.get_fields() if f.is_relation}
    assert Submission not in related
    assert not [f for f in Submission._meta.get_fields() if f.related_model is InvitationLink]
    with connection.cursor() as cursor:
        columns = {
            c.name
            for c in connection.introspection.get_table_description(
                cursor, InvitationLink._meta.db_table
            )
        }
    assert not {c for c in columns if "submission" in c or "interview" in c}


def test_a_used_link_keeps_the_day_only(used_link):
    link, submission = used_link
    assert link.used_at == timezone.localdate(submission.received_at)
    assert type(link.used_at) is dt.date  # no time of day that would equal received_at
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT used_at FROM {InvitationLink._meta.db_table} WHERE id = %s", [link.pk]
        )
        (stored,) = cursor.fetchone()
    assert type(stored) is dt.date


def test_no_stored_value_of_the_link_equals_one_of_the_interview(used_link):
    link, submission = used_link
    link_values = {
        f.attname: getattr(link, f.attname)
        for f in InvitationLink._meta.concrete_fields
        if f.attname not in {"id", "wave_id", "created_by_id", "kind"}
        and getattr(link, f.attname) not in (None, "")
    }
    assert set(link_values) == {"token", "label", "created_at", "used_at"}
    interview_values = [getattr(submission, f.attname) for f in Submission._meta.concrete_fields]
    assert not [name for name, value in link_values.items() if value in interview_values]


def test_the_admin_page_of_a_used_link_names_no_interview(used_link, client, django_user_model):
    link, submission = used_link
    client.force_login(django_user_model.objects.create_superuser("root", "r@e.org", "pw-3"))
    page = client.get(f"/admin/surveys/invitationlink/{link.pk}/change/").content.decode()
    assert ADDRESS in page and str(submission.instance_id) not in page
    assert f"/submission/{submission.pk}/" not in page


def test_the_link_cannot_be_used_twice_without_knowing_its_interview(used_link):
    link, submission = used_link
    from surveys.services import SubmissionRefused

    with pytest.raises(SubmissionRefused) as caught:
        submit_interview(
            wave=link.wave,
            answers=complete_answers(),
            channel="web",
            language="en",
            instance_id=uuid.uuid4(),
            link=link,
        )
    assert caught.value.code == "link_used"
    assert Submission.objects.count() == 1
