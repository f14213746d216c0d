"""Which review statuses feed a survey's estimates and microdata, per kind of interview."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from analytics.exports.batches import iter_microdata_batches
from analytics.exports.reader import MicrodataSelection
from analytics.models import ResultSet
from analytics.services import mark_wave_dirty, recompute_wave
from audit.models import AuditAction, AuditEvent
from surveys.demo import RATES_CURRENT, generate_wave
from surveys.models import Submission, Survey, default_estimate_statuses
from surveys.services import review_interviews, set_estimate_statuses
from tests.factories import SubmissionFactory, WaveFactory, simple_form_version

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def wave(embedded_tasks):
    wave = WaveFactory(fieldwork_start=dt.date(2026, 3, 1), code="E2026")
    generate_wave(wave=wave, form_version=wave.form_version, n=300, seed=4, rates=RATES_CURRENT)
    assert recompute_wave(wave_id=wave.pk) == "computed"
    return wave


def counted(wave) -> int:
    return ResultSet.objects.get(wave=wave, is_current=True).n_interviews


def exported(wave, *, use_cache: bool) -> int:
    selection = MicrodataSelection(wave_ids=(wave.pk,), values="codes")
    batches = iter_microdata_batches(selection, selection.codebook(), use_cache=use_cache)
    return sum(len(batch.columns["interview_id"]) for batch in batches)


def another(wave, **fields) -> Submission:
    """A copy of one of the wave's interviews, arriving as a new one."""
    template = Submission.objects.filter(wave=wave).order_by("id").first()
    template.pk, template.instance_id = None, uuid.uuid4()
    for name, value in fields.items():
        setattr(template, name, value)
    template.save()
    mark_wave_dirty(wave_id=wave.pk)
    return template


def test_a_tablet_interview_counts_once_approved_and_a_web_interview_at_once(
    wave, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        tablet = another(wave, channel="tablet", review_status="pending")
    assert counted(wave) == 300
    assert exported(wave, use_cache=True) == exported(wave, use_cache=False) == 300
    assert tablet.pk not in Submission.objects.feeding_estimates().values_list("pk", flat=True)

    with django_capture_on_commit_callbacks(execute=True):
        another(wave, channel="web", review_status="pending", psu="WEB-1")
    assert counted(wave) == 301

    with django_capture_on_commit_callbacks(execute=True):
        review_interviews(submissions=[tablet], status="approved", actor=None)
    assert counted(wave) == 302
    assert exported(wave, use_cache=True) == exported(wave, use_cache=False) == 302

    with django_capture_on_commit_callbacks(execute=True):
        review_interviews(submissions=[tablet], status="pending", actor=None)
    assert counted(wave) == 301


def test_a_survey_can_count_unreviewed_tablet_interviews(
    wave, admin_client, admin_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        another(wave, channel="odk", review_status="pending")
    assert counted(wave) == 300
    survey = wave.survey
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:surveys_survey_change", args=[survey.pk]),
            {
                "code": survey.code,
                "title": survey.title,
                "description": "",
                "estimates_self": ["approved"],
                "estimates_interviewer": ["pending", "approved"],
            },
        )
    assert response.status_code == 302
    survey.refresh_from_db()
    assert survey.estimate_statuses == {
        "self": ["approved"],
        "interviewer": ["pending", "approved"],
    }
    assert counted(wave) == 301
    event = AuditEvent.objects.get(action=AuditAction.ESTIMATE_STATUSES_CHANGED)
    assert event.actor == admin_user and event.old == default_estimate_statuses()
    assert (
        admin_client.get(reverse("admin:surveys_survey_change", args=[survey.pk])).status_code
        == 200
    )


def test_the_rule_is_per_survey():
    strict = SubmissionFactory(
        wave=WaveFactory(form_version=simple_form_version("strict")),
        channel="web",
        review_status="pending",
    )
    lenient = SubmissionFactory(
        wave=WaveFactory(form_version=simple_form_version("lenient")),
        channel="tablet",
        review_status="pending",
    )
    Survey.objects.filter(pk=strict.wave.survey_id).update(
        estimate_statuses={"self": ["approved"], "interviewer": ["approved"]}
    )
    Survey.objects.filter(pk=lenient.wave.survey_id).update(
        estimate_statuses={"self": ["pending", "approved"], "interviewer": ["pending", "approved"]}
    )
    rejected = SubmissionFactory(wave=lenient.wave, channel="tablet", review_status="rejected")
    assert list(Submission.objects.feeding_estimates()) == [lenient]
    assert set(Submission.objects.held_back()) == {strict, rejected}


def test_a_rule_that_is_not_one_is_refused():
    survey = SubmissionFactory().wave.survey
    for bad in ({"self": ["rejected"], "interviewer": []}, {"self": ["approved"]}, ["approved"]):
        with pytest.raises(ValidationError):
            set_estimate_statuses(survey=survey, statuses=bad, actor=None)  # type: ignore[arg-type]
    survey.refresh_from_db()
    assert survey.estimate_statuses == default_estimate_statuses()
