"""Anonymous links: creation, the pages for links that no longer work, admin batches."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from surveys.models import InvitationLink
from surveys.services import create_links, revoke_links, submit_interview
from tests.surveys.webform_fixtures import complete_answers, instrument_wave, public_link

pytestmark = pytest.mark.django_db


def test_tokens_are_unique_and_unguessable():
    links = create_links(wave=instrument_wave(), kind="single", count=200)
    tokens = {link.token for link in links}
    assert len(tokens) == 200
    assert all(len(t) == 32 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)


def test_create_links_checks_its_arguments():
    wave = instrument_wave()
    with pytest.raises(ValueError):
        create_links(wave=wave, kind="forever")
    with pytest.raises(ValueError):
        create_links(wave=wave, kind="single", count=0)
    assert InvitationLink.objects.count() == 0


def test_open_link_shows_the_form(client):
    link = public_link(instrument_wave())
    response = client.get(f"/s/{link.token}/")
    assert response.status_code == 200
    assert b'id="tanys-form"' in response.content


@pytest.mark.parametrize(
    ("case", "status", "kk", "en"),
    [
        ("unknown", 404, "Бұл сауалнама сілтемесі жарамсыз", "This survey link is not valid"),
        ("closed", 410, "Бұл сауалнама жабылды", "This survey is closed"),
        ("revoked", 410, "кері қайтарылды", "has been withdrawn"),
        ("used", 410, "Бұл шақыру бұрын пайдаланылған", "already been used"),
    ],
)
def test_links_that_no_longer_work_get_a_clear_page_in_three_languages(
    client, case, status, kk, en
):
    wave = instrument_wave()
    link = create_links(wave=wave, kind="single")[0]
    token = link.token
    if case == "unknown":
        token = "x" * 32
    elif case == "closed":
        wave.is_open = False
        wave.save()
    elif case == "revoked":
        revoke_links(links=[link])
    elif case == "used":
        submit_interview(
            wave=wave,
            answers=complete_answers(),
            channel="web",
            language="kk",
            instance_id=uuid.uuid4(),
            link=link,
        )
    response = client.get(f"/s/{token}/")
    assert response.status_code == status
    text = response.content.decode()
    assert kk in text and en in text
    assert 'lang="ru"' in text
    # The submit endpoint refuses in the same way, without storing anything.
    posted = client.post(f"/s/{token}/", {"answers": "{}"}, content_type="application/json")
    assert posted.status_code == status


def test_revoking_keeps_interviews_and_is_idempotent():
    wave = instrument_wave()
    links = create_links(wave=wave, kind="public", count=3)
    assert revoke_links(links=links[:2]) == 2
    assert revoke_links(links=links) == 1
    assert InvitationLink.objects.filter(revoked_at__isnull=True).count() == 0


@pytest.fixture
def researcher(client):
    user = get_user_model().objects.create_superuser("res", "res@example.org", "pw-Long-enough-1")
    client.force_login(user)
    return user


def test_admin_creates_a_batch_shows_it_and_downloads_the_urls(client, researcher):
    wave = instrument_wave()
    response = client.post(
        "/admin/surveys/invitationlink/add/",
        {"wave": wave.pk, "kind": "single", "count": 25, "label": "SMS batch 1"},
    )
    # Post, redirect, get: the batch has a page of its own, and the form is not shown again.
    assert response.status_code == 302
    page_url = response["Location"]
    assert "/admin/surveys/invitationlink/batch/" in page_url
    links = InvitationLink.objects.filter(wave=wave)
    assert links.count() == 25
    assert all(link.created_by == researcher and link.label == "SMS batch 1" for link in links)
    page = client.get(page_url)
    assert page.status_code == 200
    text = page.content.decode()
    assert 'name="count"' not in text
    for link in links:  # every link in full, address and token
        assert f"http://testserver/s/{link.token}/" in text and f"<code>{link.token}</code>" in text
    assert client.get(page_url).status_code == 200  # reloading creates nothing
    assert InvitationLink.objects.count() == 25
    download = client.get(page_url + "csv/")
    assert download["Content-Type"].startswith("text/csv")
    assert "filename*=UTF-8''links-" in download["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert len(rows) == 25
    assert {row["url"] for row in rows} == {f"http://testserver/s/{link.token}/" for link in links}


def test_a_second_batch_is_its_own_page_and_only_its_own_links(client, researcher):
    wave = instrument_wave()
    first = client.post(
        "/admin/surveys/invitationlink/add/", {"wave": wave.pk, "kind": "single", "count": 2}
    )
    second = client.post(
        "/admin/surveys/invitationlink/add/", {"wave": wave.pk, "kind": "public", "count": 1}
    )
    assert first["Location"] != second["Location"]
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(second["Location"] + "csv/").content.decode("utf-8-sig"))
        )
    )
    assert [row["kind"] for row in rows] == ["public"]
    assert client.get("/admin/surveys/invitationlink/batch/999999/").status_code == 404


def test_the_link_list_shows_whole_tokens(client, researcher):
    links = create_links(wave=instrument_wave(), kind="single", count=2)
    text = client.get("/admin/surveys/invitationlink/").content.decode()
    assert all(link.token in text for link in links)


def test_admin_refuses_a_batch_that_is_too_large(client, researcher):
    wave = instrument_wave()
    response = client.post(
        "/admin/surveys/invitationlink/add/", {"wave": wave.pk, "kind": "single", "count": 10_001}
    )
    assert response.status_code == 200
    assert b"errorlist" in response.content
    assert InvitationLink.objects.count() == 0


def test_admin_revoke_action(client, researcher):
    links = create_links(wave=instrument_wave(), kind="single", count=2)
    client.post(
        "/admin/surveys/invitationlink/",
        {"action": "revoke", "_selected_action": [links[0].pk]},
    )
    links[0].refresh_from_db()
    links[1].refresh_from_db()
    assert links[0].revoked_at is not None and links[0].revoked_at <= timezone.now()
    assert links[1].revoked_at is None
    assert client.get("/admin/surveys/invitationlink/").status_code == 200
    assert client.get(f"/admin/surveys/invitationlink/{links[0].pk}/change/").status_code == 200


def test_creating_revoking_and_readdressing_links_is_recorded_without_tokens(client, researcher):
    from audit.models import AuditAction, AuditEvent

    wave = instrument_wave()
    client.post(
        "/admin/surveys/invitationlink/add/",
        {"wave": wave.pk, "kind": "single", "count": 3, "label": "invitee@example.org"},
    )
    links = list(InvitationLink.objects.filter(wave=wave).order_by("pk"))
    created = AuditEvent.objects.get(action=AuditAction.LINKS_CREATED)
    assert created.actor == researcher and created.survey_id == wave.survey_id
    assert created.detail == {
        "wave": wave.pk,
        "kind": "single",
        "count": 3,
        "ids": [link.pk for link in links],
    }

    client.post(
        "/admin/surveys/invitationlink/",
        {"action": "revoke", "_selected_action": [links[0].pk]},
    )
    revoked = AuditEvent.objects.get(action=AuditAction.LINKS_REVOKED)
    assert revoked.actor == researcher and revoked.detail["ids"] == [links[0].pk]

    response = client.post(
        "/admin/surveys/invitationlink/",
        {"action": "rotate", "_selected_action": [link.pk for link in links]},
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 2  # the revoked link keeps its address
    before = [link.token for link in links]
    for link in links:
        link.refresh_from_db()
    assert links[0].token == before[0]
    assert {r["token"] for r in rows} == {links[1].token, links[2].token}
    assert not {links[1].token, links[2].token} & set(before)
    rotated = AuditEvent.objects.get(action=AuditAction.LINKS_ROTATED)
    assert rotated.detail == {"ids": [links[1].pk, links[2].pk], "waves": [wave.pk], "count": 2}
    for event in (created, revoked, rotated):
        text = str(event.detail) + str(event.old) + str(event.new)
        assert "invitee" not in text and not any(link.token in text for link in links)


def test_a_new_address_retires_the_old_one(client):
    from surveys.services import rotate_link_tokens

    link = public_link(instrument_wave())
    old = link.token
    (rotated,) = rotate_link_tokens(links=[link], actor=None)
    assert rotated.token != old and len(rotated.token) == 32
    assert client.get(f"/s/{old}/").status_code == 404
    assert client.get(f"/s/{rotated.token}/").status_code == 200
