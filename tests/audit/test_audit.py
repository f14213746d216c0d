"""The audit trail: written with the change it records, never changed, readable by admins."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from audit.models import AppendOnly, AuditAction, AuditEvent
from audit.services import record


@pytest.fixture
def admin_user_(db):
    return get_user_model().objects.create_superuser("root", "root@example.org", "pw-9f8e7d")


def test_an_event_keeps_who_what_and_the_object(admin_user_):
    event = record(
        actor=admin_user_,
        action=AuditAction.LINKS_REVOKED,
        obj=admin_user_,
        survey_id=7,
        old={"revoked": False},
        new={"revoked": True},
    )
    event.refresh_from_db()
    assert (event.actor_id, event.actor_name, event.action) == (
        admin_user_.pk,
        "root",
        "links.revoked",
    )
    assert (event.object_type, event.object_id, event.survey_id) == (
        "auth.user",
        str(admin_user_.pk),
        7,
    )
    assert (event.old, event.new) == ({"revoked": False}, {"revoked": True})


def test_an_unknown_action_is_refused(admin_user_):
    with pytest.raises(ValueError):
        record(actor=admin_user_, action="made.up")


def test_a_change_that_rolls_back_leaves_no_event(admin_user_):
    with pytest.raises(RuntimeError), transaction.atomic():
        record(actor=admin_user_, action=AuditAction.ROLE_GRANTED)
        raise RuntimeError("the change failed")
    assert not AuditEvent.objects.exists()


def test_the_application_cannot_change_or_delete_an_event(admin_user_):
    event = record(actor=None, action=AuditAction.MARGINS_SAVED)
    event.action = AuditAction.ROLE_GRANTED
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(actor_name="someone else")
    with pytest.raises(AppendOnly):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().action == "margins.saved"


def test_the_database_refuses_an_update_behind_the_applications_back(admin_user_):
    event = record(actor=admin_user_, action=AuditAction.ROLE_GRANTED)
    with (
        pytest.raises(Exception, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE audit_auditevent SET actor_name = %s WHERE id = %s", ["x", event.pk])
    if connection.vendor == "postgresql":
        with (
            pytest.raises(Exception, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).actor_name == "root"


def test_deleting_a_user_keeps_their_events(admin_user_):
    other = get_user_model().objects.create_user("leaver", password="pw-1a2b3c")
    record(actor=other, action=AuditAction.MICRODATA_DOWNLOADED)
    other.delete()
    event = AuditEvent.objects.get()
    assert (event.actor_id is not None, event.actor_name) == (True, "leaver")


def test_admins_see_filter_and_export_the_trail_but_cannot_edit_it(client, admin_user_):
    record(actor=admin_user_, action=AuditAction.ROLE_GRANTED, detail={"role": "researcher"})
    record(actor=admin_user_, action=AuditAction.MICRODATA_DOWNLOADED, detail={"rows": 857})
    client.force_login(admin_user_)
    listing = client.get("/admin/audit/auditevent/")
    assert listing.status_code == 200
    assert b"microdata.downloaded" in listing.content or "Microdata" in listing.text
    assert client.get("/admin/audit/auditevent/add/").status_code == 403

    exported = client.get("/admin/audit/auditevent/export.csv?action=microdata.downloaded")
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert [(r["action"], r["actor_name"], r["detail"]) for r in rows] == [
        ("microdata.downloaded", "root", '{"rows": 857}')
    ]


def test_staff_without_the_view_permission_cannot_export(client, db):
    staff = get_user_model().objects.create_user("clerk", password="pw-4d5e6f", is_staff=True)
    record(actor=None, action=AuditAction.MARGINS_SAVED)
    client.force_login(staff)
    assert client.get("/admin/audit/auditevent/export.csv").status_code == 403
