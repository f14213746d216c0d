"""ODK Collect's side of the conversation, from the OpenRosa specifications.

The checks read responses as Collect does (content type, namespaces, required elements,
``md5:`` hashes of the bytes served, HEAD 204, 201 for a stored submission) with the small
client in `tests.odk.openrosa_client`, which knows nothing of the server's code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
import zlib
from xml.etree import ElementTree as ET

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from collect.services import revoke_device, send_back
from odk.models import Attachment
from odk.services import collect_settings, create_odk_device, settings_qr_payload
from surveys.models import Channel, Submission
from tests.collect.collect_fixtures import assignment_for, tablet_version, tablet_wave, user_in
from tests.odk.openrosa_client import fill, primary_instance, translations

pytestmark = pytest.mark.django_db

FORM_LIST = "{http://openrosa.org/xforms/xformsList}"
RESPONSE = "{http://openrosa.org/http/response}"
OPENROSA = {"HTTP_X_OPENROSA_VERSION": "1.0"}


@pytest.fixture
def field():
    wave = tablet_wave()
    enumerator = user_in("enumerator", "aigerim", survey=wave.survey)
    assignment = assignment_for(enumerator, wave)
    supervisor = user_in("supervisor", "bolat", survey=wave.survey)
    device, token = create_odk_device(enumerator=enumerator, actor=supervisor)
    return {
        "wave": wave,
        "enumerator": enumerator,
        "assignment": assignment,
        "supervisor": supervisor,
        "device": device,
        "base": f"/odk/{token}",
    }


def openrosa_headers_ok(response) -> None:
    assert response["X-OpenRosa-Version"] == "1.0"
    assert response["Date"]
    assert response["Content-Language"]


def form_list(client, base: str) -> list[dict[str, str]]:
    response = client.get(f"{base}/formList", **OPENROSA)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    openrosa_headers_ok(response)
    root = ET.fromstring(response.content)
    assert root.tag == f"{FORM_LIST}xforms"
    forms = []
    for xform in root.findall(f"{FORM_LIST}xform"):
        entry = {}
        for tag in ("formID", "name", "version", "hash", "downloadUrl"):
            found = xform.findall(f"{FORM_LIST}{tag}")
            assert len(found) == 1, f"{tag} must appear exactly once"
            entry[tag] = found[0].text or ""
        assert xform.find(f"{FORM_LIST}manifestUrl") is None  # no media files
        forms.append(entry)
    return forms


def download(client, url: str) -> bytes:
    response = client.get(url, **OPENROSA)
    assert response.status_code == 200
    openrosa_headers_ok(response)
    return response.content


def post(client, base: str, instance: bytes, *files, incomplete: bool = False, **extra):
    data = {"xml_submission_file": SimpleUploadedFile("submission.xml", instance, "text/xml")}
    for i, upload in enumerate(files):
        data[f"file{i}"] = upload
    if incomplete:
        data["*isIncomplete*"] = "yes"
    response = client.post(f"{base}/submission", data, **OPENROSA, **extra)
    openrosa_headers_ok(response)
    return response


def message_of(response) -> str:
    root = ET.fromstring(response.content)
    assert root.tag == f"{RESPONSE}OpenRosaResponse"
    (message,) = root.findall(f"{RESPONSE}message")
    return message.text or ""


def the_form(client, field) -> bytes:
    (entry,) = form_list(client, field["base"])
    return download(client, entry["downloadUrl"])


def test_form_list_hashes_the_bytes_served_and_the_form_has_three_languages(client, field):
    (entry,) = form_list(client, field["base"])
    assert (entry["formID"], entry["version"]) == ("tablet", "1")
    xform = download(client, entry["downloadUrl"])
    assert entry["hash"] == "md5:" + hashlib.md5(xform).hexdigest()
    assert translations(xform) == ["Қазақша (kk)", "Русский (ru)", "English (en)"]
    assert primary_instance(xform).get("version") == "1"
    # asked again, the same bytes and hash
    assert form_list(client, field["base"]) == [entry]
    assert download(client, entry["downloadUrl"]) == xform


@pytest.mark.parametrize(
    "text",
    ["Interview received.", "a & b < c > d \"e\" 'f'", "Сұхбат\nage: ≥ 18", "&amp; ]]>", ""],
)
def test_a_message_is_the_openrosa_response_a_tree_would_write(text):
    from odk import openrosa

    root = ET.Element("OpenRosaResponse", xmlns=openrosa.RESPONSE_NS)
    ET.SubElement(root, "message", nature="").text = text
    tree = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")
    response = openrosa.message(text, status=201)
    assert response.content == tree
    assert response.status_code == 201 and response["Content-Type"] == "text/xml; charset=utf-8"
    assert ET.fromstring(response.content).find(f"{RESPONSE}message").text == (text or None)


def test_head_on_submission_is_204_with_the_accepted_length(client, field):
    response = client.head(f"{field['base']}/submission", **OPENROSA)
    assert response.status_code == 204
    assert int(response["X-OpenRosa-Accept-Content-Length"]) > 1_000_000
    openrosa_headers_ok(response)


def test_a_valid_instance_is_stored_once_as_an_odk_interview(client, field):
    xform = the_form(client, field)
    instance_id = uuid.uuid4()
    xml = fill(xform, {"q1": "1", "age": "41"}, instance_id=instance_id)
    first = post(client, field["base"], xml)
    assert first.status_code == 201, first.content
    assert message_of(first)
    again = post(client, field["base"], xml)
    assert again.status_code == 201
    stored = Submission.objects.get(instance_id=instance_id)
    assert (stored.channel, stored.enumerator, stored.answers["age"]) == (
        Channel.ODK,
        field["enumerator"],
        41,
    )
    assert stored.tablet.assignment == field["assignment"]
    assert Submission.objects.count() == 1


def test_a_submission_takes_a_lookup_and_an_insert(
    client, field, django_assert_num_queries, django_capture_on_commit_callbacks
):
    from django.db import connection

    from tests.conftest import need

    need(connection.vendor == "postgresql", "the one-statement path needs PostgreSQL")
    xform = the_form(client, field)
    post(client, field["base"], fill(xform, {"q1": "1", "age": "41"}, instance_id=uuid.uuid4()))
    # The device with the version, the enumerator's work and the stored instance, then the
    # interview and its paradata in one statement.
    with django_capture_on_commit_callbacks() as marks, django_assert_num_queries(2):
        response = post(
            client, field["base"], fill(xform, {"q1": "2", "age": "52"}, instance_id=uuid.uuid4())
        )
    assert response.status_code == 201 and len(marks) == 1
    assert Submission.objects.count() == 2


def test_the_same_instance_id_with_other_answers_is_409(client, field):
    xform = the_form(client, field)
    instance_id = uuid.uuid4()
    assert (
        post(
            client, field["base"], fill(xform, {"q1": "1", "age": "41"}, instance_id=instance_id)
        ).status_code
        == 201
    )
    conflict = post(
        client, field["base"], fill(xform, {"q1": "2", "age": "41"}, instance_id=instance_id)
    )
    assert conflict.status_code == 409
    assert "other answers" in message_of(conflict) or message_of(conflict)
    assert Submission.objects.get(instance_id=instance_id).answers["q1"] == 1


def test_an_invalid_answer_is_refused_with_the_problem_in_the_interviews_language(client, field):
    xform = the_form(client, field)
    refused = post(
        client,
        field["base"],
        fill(xform, {"q1": "1", "age": "7"}, instance_id=uuid.uuid4()),
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    assert refused.status_code == 400
    text = message_of(refused)
    assert "age" in text and any("а" <= ch <= "я" for ch in text.lower())
    assert refused["Content-Language"] == "ru"
    assert not Submission.objects.exists()


def test_no_instance_id_is_400(client, field):
    xml = b'<data id="tablet" version="1"><q1>1</q1><age>30</age><meta/></data>'
    response = post(client, field["base"], xml)
    assert response.status_code == 400
    assert "instanceID" in message_of(response)


def test_a_split_upload_keeps_every_attachment_once(client, field, settings):
    xform = the_form(client, field)
    xml = fill(xform, {"q1": "1", "age": "33"}, instance_id=uuid.uuid4())
    photo = SimpleUploadedFile("photo.jpg", b"\xff\xd8" + b"1" * 5000, "image/jpeg")
    audit = SimpleUploadedFile("audit.csv", b"event,node,start\n", "text/csv")
    assert post(client, field["base"], xml, photo, incomplete=True).status_code == 201
    photo_again = SimpleUploadedFile("photo.jpg", b"\xff\xd8" + b"1" * 5000, "image/jpeg")
    assert post(client, field["base"], xml, photo_again, audit).status_code == 201
    names = sorted(Attachment.objects.values_list("name", flat=True))
    assert names == ["audit.csv", "photo.jpg"]
    stored = Attachment.objects.get(name="photo.jpg")
    assert stored.size == 5002 and str(settings.MEDIA_ROOT) in stored.file.path
    assert Submission.objects.count() == 1


def test_an_attachment_over_the_limit_is_refused_with_the_limit(client, field, settings):
    settings.ODK_MAX_ATTACHMENT_BYTES = 1_000_000
    xform = the_form(client, field)
    xml = fill(xform, {"q1": "1", "age": "33"}, instance_id=uuid.uuid4())
    big = SimpleUploadedFile("video.mp4", b"0" * 1_000_001, "video/mp4")
    response = post(client, field["base"], xml, big, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 413
    assert "1 MB" in message_of(response)
    assert not Attachment.objects.exists()
    assert not Submission.objects.exists()  # refused whole: Collect keeps and resends it


def test_an_old_form_version_is_accepted_and_tied_to_it(client, field):
    old = field["assignment"].form_version
    old_xform = the_form(client, field)
    newer = tablet_version("2")
    instance_id = uuid.uuid4()
    response = post(
        client, field["base"], fill(old_xform, {"q1": "2", "age": "52"}, instance_id=instance_id)
    )
    assert response.status_code == 201
    assert Submission.objects.get(instance_id=instance_id).form_version == old
    assert newer != old


def test_an_edit_of_a_returned_interview_is_a_new_version(client, field):
    xform = the_form(client, field)
    first_id, fixed_id = uuid.uuid4(), uuid.uuid4()
    assert (
        post(
            client, field["base"], fill(xform, {"q1": "1", "age": "30"}, instance_id=first_id)
        ).status_code
        == 201
    )
    first = Submission.objects.get(instance_id=first_id)
    send_back(submission=first, reviewer=field["supervisor"], comment="Жасын тексеріңіз")
    edit = fill(xform, {"q1": "1", "age": "31"}, instance_id=fixed_id, deprecated_id=first_id)
    assert post(client, field["base"], edit).status_code == 201
    fixed = Submission.objects.get(instance_id=fixed_id)
    assert fixed.replaces == first and fixed.answers["age"] == 31
    assert Submission.objects.count() == 2


def test_an_edit_of_an_interview_not_sent_back_is_refused(client, field):
    xform = the_form(client, field)
    first_id = uuid.uuid4()
    assert (
        post(
            client, field["base"], fill(xform, {"q1": "1", "age": "30"}, instance_id=first_id)
        ).status_code
        == 201
    )
    edit = fill(xform, {"q1": "1", "age": "31"}, instance_id=uuid.uuid4(), deprecated_id=first_id)
    response = post(client, field["base"], edit)
    assert response.status_code == 400
    assert Submission.objects.count() == 1


def test_a_revoked_device_gets_401_at_once(client, field):
    xform = the_form(client, field)
    revoke_device(device=field["device"], actor=field["supervisor"])
    assert client.get(f"{field['base']}/formList", **OPENROSA).status_code == 401
    response = post(
        client, field["base"], fill(xform, {"q1": "1", "age": "30"}, instance_id=uuid.uuid4())
    )
    assert response.status_code == 401
    assert not Submission.objects.exists()


def test_a_small_post_answers_as_the_usual_path_does(client, field, monkeypatch):
    """A POST small enough for the one-query path gets the response of the path that
    finds the device first, whatever the outcome."""
    from odk import views

    xform = the_form(client, field)
    answer = {"q1": "1", "age": "41"}
    cases = {
        "stored": lambda i: fill(xform, answer, instance_id=i),
        "invalid": lambda i: fill(xform, {"q1": "1", "age": "7"}, instance_id=i),
        "unknown form": lambda i: fill(xform, answer, instance_id=i).replace(
            b'id="tablet"', b'id="another"'
        ),
        "no instance id": lambda i: b'<data id="tablet" version="1"><q1>1</q1><meta/></data>',
        "not XML": lambda i: b"<data id=",
    }

    def outcome(response) -> tuple[int, str, str]:
        return response.status_code, message_of(response), response["Content-Language"]

    for name, body in cases.items():
        seen = []
        for one_query in (True, False):
            monkeypatch.setattr(views, "ONE_QUERY_MAX_BYTES", 256 * 1024 if one_query else 0)
            instance_id = uuid.uuid4()
            first = post(client, field["base"], body(instance_id), HTTP_ACCEPT_LANGUAGE="ru")
            again = post(client, field["base"], body(instance_id), HTTP_ACCEPT_LANGUAGE="ru")
            other = post(
                client,
                field["base"],
                fill(xform, {"q1": "2", "age": "41"}, instance_id=instance_id),
                HTTP_ACCEPT_LANGUAGE="ru",
            )
            seen.append((outcome(first), outcome(again), outcome(other)))
        assert seen[0] == seen[1], name
        assert seen[0][0][0] == {"stored": 201, "invalid": 400, "unknown form": 404}.get(name, 400)
    # in each case and on each path, the third POST stores valid answers under the id
    assert Submission.objects.filter(channel=Channel.ODK).count() == 2 * len(cases)


def test_a_token_with_the_wrong_secret_stores_nothing(client, field):
    xform = the_form(client, field)
    prefix = field["base"].removeprefix("/odk/").split(".")[0]
    response = post(
        client,
        f"/odk/{prefix}.{'x' * 43}",
        fill(xform, {"q1": "1", "age": "30"}, instance_id=uuid.uuid4()),
    )
    assert response.status_code == 401
    assert not Submission.objects.exists()


def test_a_disabled_account_stores_nothing(client, field):
    xform = the_form(client, field)
    field["enumerator"].is_active = False
    field["enumerator"].save()
    response = post(
        client, field["base"], fill(xform, {"q1": "1", "age": "30"}, instance_id=uuid.uuid4())
    )
    assert response.status_code == 403
    assert not Submission.objects.exists()


def test_an_unknown_device_is_refused_before_its_instance_is_read(client, field):
    response = post(client, "/odk/aaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", b"<data id=")
    assert response.status_code == 401


def test_an_unknown_token_gets_401(client, field):
    assert client.get("/odk/aaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/formList").status_code == 401


def test_account_sign_in_is_basic_over_https_after_a_challenge(client, field):
    challenge = client.get("/odk/formList", secure=True, **OPENROSA)
    assert challenge.status_code == 401
    assert challenge["WWW-Authenticate"].startswith("Basic ")
    credentials = base64.b64encode(b"aigerim:pass-Word-123").decode()
    signed = client.get(
        "/odk/formList", secure=True, HTTP_AUTHORIZATION=f"Basic {credentials}", **OPENROSA
    )
    assert signed.status_code == 200
    assert b"tablet" in signed.content
    plain = client.get("/odk/formList", HTTP_AUTHORIZATION=f"Basic {credentials}", **OPENROSA)
    assert plain.status_code == 403  # never over plain HTTP


def test_the_settings_qr_code_holds_collects_project_settings(field):
    project = collect_settings(server_url="https://tanys.example/odk/abc", project_name="Tanys")
    decoded = json.loads(zlib.decompress(base64.b64decode(settings_qr_payload(project))))
    assert decoded == {
        "general": {
            "server_url": "https://tanys.example/odk/abc",
            "form_update_mode": "match_exactly",
            "autosend": "wifi_and_cellular",
        },
        "admin": {},
        "project": {"name": "Tanys"},
    }


def test_a_supervisor_makes_a_device_and_its_qr_code_then_revokes_it(client, field):
    client.force_login(field["supervisor"])
    page = client.post("/odk/devices/", {"enumerator": field["enumerator"].pk, "label": "Tab 7"})
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    html = page.content.decode()
    assert "<svg" in html
    server_url = html.split('<code class="server-url">')[1].split("</code>")[0]
    base = server_url.removeprefix("http://testserver")
    client.logout()
    assert form_list(client, base)[0]["formID"] == "tablet"
    device = field["enumerator"].devices.get(label="Tab 7")
    client.force_login(field["supervisor"])
    assert client.post(f"/odk/devices/{device.pk}/revoke").status_code == 302
    assert client.get(f"{base}/formList").status_code == 401
    from audit.models import AuditEvent

    assert list(
        AuditEvent.objects.filter(object_id=str(device.pk)).values_list("action", flat=True)
    ) == ["device.revoked", "device.enrolled"]


def test_an_enumerator_cannot_make_devices(client, field):
    client.force_login(field["enumerator"])
    assert client.get("/odk/devices/").status_code == 403


def test_an_account_that_collects_nothing_is_refused_over_basic(client, field):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("reader", password="pass-Word-123")
    credentials = base64.b64encode(b"reader:pass-Word-123").decode()
    response = client.get(
        "/odk/formList", secure=True, HTTP_AUTHORIZATION=f"Basic {credentials}", **OPENROSA
    )
    assert response.status_code == 403
    assert not field["enumerator"].devices.filter(app_version="odk-account").exists()
