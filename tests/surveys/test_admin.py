from pathlib import Path

import pytest
from django.urls import reverse

from surveys.models import FormVersion
from tests.factories import SubmissionFactory
from tests.sources import XLSFORMS

pytestmark = pytest.mark.django_db
INSTRUMENT = (
    Path(__file__).resolve().parents[2] / "surveys" / "instruments" / "informal_networks.xlsx"
)


@pytest.mark.parametrize("model", ["survey", "formversion", "wave", "region", "submission"])
def test_changelists_render(admin_client, model):
    SubmissionFactory()
    response = admin_client.get(reverse(f"admin:surveys_{model}_changelist"))
    assert response.status_code == 200


def test_submission_page_shows_answers_with_question_and_choice_labels(admin_client):
    submission = SubmissionFactory(answers={"q1": 1, "q2": 41})
    admin_client.cookies["tanys_language"] = "ru"
    response = admin_client.get(reverse("admin:surveys_submission_change", args=[submission.pk]))
    html = response.content.decode()
    assert "Вопрос" in html and "1 = Да" in html and "41" in html


def test_upload_imports_a_form(admin_client):
    with INSTRUMENT.open("rb") as handle:
        response = admin_client.post(
            reverse("admin:surveys_formversion_upload"),
            {"survey_code": "informal-networks", "xlsform": handle},
        )
    assert response.status_code == 302
    version = FormVersion.objects.get()
    assert version.version == "2026.3" and version.xlsform.name.endswith(".xlsx")


def test_upload_of_a_broken_form_shows_where_and_stores_nothing(admin_client):
    with (XLSFORMS / "duplicate_columns.xlsx").open("rb") as handle:
        response = admin_client.post(
            reverse("admin:surveys_formversion_upload"),
            {"survey_code": "broken", "xlsform": handle},
        )
    assert response.status_code == 200
    assert "sheet &#x27;survey&#x27;, row 1, column &#x27;label&#x27;" in response.content.decode()
    assert not FormVersion.objects.exists()


def test_upload_records_who_uploaded_which_file(admin_client, admin_user):
    import hashlib

    from audit.models import AuditAction, AuditEvent

    with INSTRUMENT.open("rb") as handle:
        admin_client.post(
            reverse("admin:surveys_formversion_upload"),
            {"survey_code": "informal-networks", "xlsform": handle},
        )
    version = FormVersion.objects.get()
    event = AuditEvent.objects.get(action=AuditAction.FORM_UPLOADED)
    assert event.actor == admin_user and event.survey_id == version.survey_id
    assert event.object_id == str(version.pk)
    assert event.detail["file_name"] == "informal_networks.xlsx"
    assert event.detail["sha256"] == hashlib.sha256(INSTRUMENT.read_bytes()).hexdigest()
    assert (
        event.detail["version"] == version.version and event.detail["survey"] == "informal-networks"
    )
    # The same file again stores nothing and records nothing.
    with INSTRUMENT.open("rb") as handle:
        admin_client.post(
            reverse("admin:surveys_formversion_upload"),
            {"survey_code": "informal-networks", "xlsform": handle},
        )
    assert AuditEvent.objects.filter(action=AuditAction.FORM_UPLOADED).count() == 1


def test_a_wave_changed_in_the_admin_is_recomputed(
    admin_client, django_capture_on_commit_callbacks
):
    from analytics.models import WaveComputation

    wave = SubmissionFactory().wave
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            reverse("admin:surveys_wave_change", args=[wave.pk]),
            {
                "survey": wave.survey_id,
                "code": wave.code,
                "title": "",
                "form_version": wave.form_version_id,
                "geography": "KZ2013",
                "fieldwork_start": "",
                "fieldwork_end": "",
                "is_open": "on",
            },
        )
    assert response.status_code == 302
    wave.refresh_from_db()
    assert wave.geography == "KZ2013"
    for callback in callbacks[:1]:
        callback()  # the mark, after commit
    assert WaveComputation.objects.get(wave=wave).dirty


@pytest.mark.parametrize(
    ("language", "named"),
    [("en", "-3 = Not applicable"), ("ru", "-3 = Неприменимо"), ("kk", "-3 = Қатысты емес")],
)
def test_submission_page_names_special_codes_in_the_admins_language(admin_client, language, named):
    submission = SubmissionFactory(answers={"q1": -3, "q2": 41})
    admin_client.cookies["tanys_language"] = language
    response = admin_client.get(reverse("admin:surveys_submission_change", args=[submission.pk]))
    html = response.content.decode()
    assert named in html
    assert '<td class="">41</td>' in html


def test_submission_list_has_narrow_columns(admin_client):
    submission = SubmissionFactory()
    response = admin_client.get(reverse("admin:surveys_submission_changelist"))
    html = response.content.decode()
    short = str(submission.instance_id)[:8]
    assert f'title="{submission.instance_id}">{short}…</span>' in html
    assert f">{submission.wave.code}</span>" in html
    # The whole id is not a column of its own any more.
    assert "field-instance_id" not in html and "field-interview" in html
