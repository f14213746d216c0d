"""Review decisions and deletions of interviews: through the services, from the admin too,
recorded in the audit trail, and followed by the stored estimates."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from analytics import snapshot
from analytics.exports.batches import iter_microdata_batches
from analytics.exports.reader import MicrodataSelection
from analytics.models import ResultSet
from analytics.selectors import current_estimates
from analytics.services import recompute_wave
from audit.models import AuditAction, AuditEvent
from surveys.demo import RATES_CURRENT, generate_wave
from surveys.models import Submission
from surveys.services import delete_interviews, review_interviews
from tests.factories import SubmissionFactory, WaveFactory

pytestmark = pytest.mark.django_db
FIELDS = ("n", "n_numerator", "estimate", "se", "ci_low", "ci_high", "suppressed")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def estimated_wave(embedded_tasks):
    """A wave of 600 synthetic (approved) interviews with its estimates stored."""
    wave = WaveFactory(fieldwork_start=dt.date(2026, 3, 1), code="D2026")
    generate_wave(wave=wave, form_version=wave.form_version, n=600, seed=21, rates=RATES_CURRENT)
    assert recompute_wave(wave_id=wave.pk) == "computed"
    return wave


def stored(wave) -> dict[tuple, tuple]:
    return {
        (e.indicator, e.geography, e.region_id): tuple(getattr(e, f) for f in FIELDS)
        for e in current_estimates(wave=wave)
    }


def assert_stored_estimates_match_a_fresh_recomputation(wave) -> None:
    before = stored(wave)
    snapshot.remove(wave.pk)  # nothing kept from earlier runs: read every interview again
    assert recompute_wave(wave_id=wave.pk, force=True) == "computed"
    fresh = stored(wave)
    assert before.keys() == fresh.keys() and len(fresh) > 100
    for key, values in fresh.items():
        for field, old, new in zip(FIELDS, before[key], values, strict=True):
            if new is None or isinstance(new, bool):
                assert old == new, (key, field)
            else:
                assert old == pytest.approx(new, rel=1e-9), (key, field)


def exported(wave, *, use_cache: bool) -> int:
    selection = MicrodataSelection(wave_ids=(wave.pk,), values="codes")
    batches = iter_microdata_batches(selection, selection.codebook(), use_cache=use_cache)
    return sum(batch.length for batch in batches)


def current_count(wave) -> int:
    return ResultSet.objects.get(wave=wave, is_current=True).n_interviews


def test_deleting_interviews_in_the_admin_updates_the_published_estimates(
    admin_client, admin_user, estimated_wave, django_capture_on_commit_callbacks
):
    wave = estimated_wave
    ids = list(Submission.objects.filter(wave=wave).order_by("id").values_list("pk", flat=True))
    assert exported(wave, use_cache=True) == 600  # the wave's export cache, filled

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:surveys_submission_delete", args=[ids[0]]), {"post": "yes"}
        )
    assert response.status_code == 302
    assert current_count(wave) == 599

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:surveys_submission_changelist"),
            {"action": "delete_selected", "_selected_action": ids[1:121], "post": "yes"},
        )
    assert response.status_code == 302
    assert Submission.objects.filter(wave=wave).count() == 479
    assert current_count(wave) == 479
    assert_stored_estimates_match_a_fresh_recomputation(wave)
    assert exported(wave, use_cache=True) == exported(wave, use_cache=False) == 479

    events = list(AuditEvent.objects.filter(action=AuditAction.INTERVIEWS_DELETED).order_by("id"))
    assert [e.detail["count"] for e in events] == [1, 120]
    assert events[1].detail["ids"] == ids[1:121] and events[1].detail["waves"] == [wave.pk]
    assert all(e.actor == admin_user and e.survey_id == wave.survey_id for e in events)
    assert "answers" not in str(events[1].detail) and len(events[1].detail["instance_ids"]) == 120


def test_review_in_the_admin_records_who_decided_and_updates_the_estimates(
    admin_client, admin_user, estimated_wave, django_capture_on_commit_callbacks
):
    wave = estimated_wave
    ids = list(Submission.objects.filter(wave=wave).order_by("id").values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:surveys_submission_changelist"),
            {"action": "reject", "_selected_action": ids[:50]},
        )
    assert current_count(wave) == 550
    assert_stored_estimates_match_a_fresh_recomputation(wave)
    rejected = Submission.objects.get(pk=ids[0])
    assert rejected.review_status == "rejected" and rejected.reviewed_by == admin_user
    assert rejected.reviewed_at is not None
    event = AuditEvent.objects.get(action=AuditAction.INTERVIEWS_REVIEWED)
    assert event.actor == admin_user and event.detail["ids"] == ids[:50]
    assert event.old == {"review_status": {str(pk): "approved" for pk in ids[:50]}}
    assert event.new == {"review_status": "rejected"}

    # One interview approved again on its own page, with a comment.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:surveys_submission_change", args=[ids[0]]),
            {"review_status": "approved", "review_comment": "Checked by phone."},
        )
    assert response.status_code == 302
    rejected.refresh_from_db()
    assert rejected.review_status == "approved" and rejected.review_comment == "Checked by phone."
    assert current_count(wave) == 551


def test_a_decision_sets_comments_and_changes_only_what_it_changes(
    django_capture_on_commit_callbacks,
):
    supervisor = get_user_model().objects.create_user("supervisor")
    first, second = SubmissionFactory.create_batch(2, channel="tablet")
    with django_capture_on_commit_callbacks() as callbacks:
        changed = review_interviews(
            submissions=[first, second],
            status="rejected",
            actor=supervisor,
            comment=" The age does not match the birth year. ",
            question_comments={"q2": "Ask again", "q1": "  "},
        )
    assert changed == 2 and len(callbacks) == 1  # the wave is recomputed after commit
    first.refresh_from_db()
    assert first.review_comment == "The age does not match the birth year."
    assert first.question_comments == {"q2": "Ask again"}
    assert first.reviewed_by == supervisor
    # The same decision again changes nothing and records nothing.
    with django_capture_on_commit_callbacks() as callbacks:
        again = review_interviews(
            submissions=[first.pk],
            status="rejected",
            actor=supervisor,
            comment="The age does not match the birth year.",
            question_comments={"q2": "Ask again"},
        )
    assert again == 0 and callbacks == []
    assert AuditEvent.objects.filter(action=AuditAction.INTERVIEWS_REVIEWED).count() == 1


def test_a_decision_naming_an_unknown_question_changes_nothing():
    submission = SubmissionFactory()
    with pytest.raises(ValueError, match="NOPE"):
        review_interviews(
            submissions=[submission],
            status="rejected",
            actor=None,
            question_comments={"NOPE": "?"},
        )
    with pytest.raises(ValueError):
        review_interviews(submissions=[submission], status="maybe", actor=None)
    submission.refresh_from_db()
    assert submission.review_status == "pending" and submission.reviewed_at is None
    assert not AuditEvent.objects.filter(action=AuditAction.INTERVIEWS_REVIEWED).exists()


def test_deleting_an_interview_that_a_correction_replaces_is_refused_whole():
    from django.db.models import ProtectedError

    original = SubmissionFactory()
    other = SubmissionFactory(wave=original.wave)
    SubmissionFactory(wave=original.wave, replaces=original, instance_id=uuid.uuid4())
    with pytest.raises(ProtectedError):
        delete_interviews(submissions=[other, original], actor=None)
    assert Submission.objects.filter(pk__in=[original.pk, other.pk]).count() == 2
    assert not AuditEvent.objects.filter(action=AuditAction.INTERVIEWS_DELETED).exists()
