"""The submission service: one function for every channel, all or nothing, idempotent."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from analytics.models import WaveComputation
from surveys.models import InvitationLink, Region, Submission
from surveys.services import MAX_ANSWERS_BYTES, SubmissionRefused, create_links, submit_interview
from surveys.validation import AnswerErrors
from tests.surveys.webform_fixtures import complete_answers, instrument_wave, public_link

pytestmark = pytest.mark.django_db


def submit(wave, answers=None, **kwargs):
    defaults = {
        "channel": "web",
        "language": "kk",
        "instance_id": uuid.uuid4(),
    }
    return submit_interview(
        wave=wave, answers=answers or complete_answers(), **{**defaults, **kwargs}
    )


def test_web_interview_is_stored_with_design_fields_and_paradata():
    wave = instrument_wave()
    started = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)
    instance = uuid.uuid4()
    submission = submit(
        wave,
        complete_answers(SETTLEMENT="4", REGION="KZ-10"),
        instance_id=str(instance),
        started_at=started,
        ended_at=started + dt.timedelta(minutes=12, seconds=5),
        user_agent_class="phone",
        language="ru",
    )
    submission.refresh_from_db()
    assert submission.instance_id == instance
    assert submission.region == Region.objects.get(geography="KZ2022", code="KZ-10")
    assert (submission.urban_rural, submission.stratum) == (2, "KZ-10-R")
    assert submission.psu == f"WEB-{instance}"  # each self-completed interview its own PSU
    assert submission.weight == 1.0
    assert submission.duration_seconds == 725
    assert (submission.language, submission.user_agent_class, submission.channel) == (
        "ru",
        "phone",
        "web",
    )
    assert submission.answers["URBAN"] == 2
    assert submission.form_version == wave.form_version


def test_region_maps_to_its_2013_unit_on_a_2013_wave():
    wave = instrument_wave(code="2013w", geography="KZ2013")
    submission = submit(
        wave, complete_answers(REGION="KZ-10")
    )  # Abai, part of East Kazakhstan in 2013
    assert submission.region.code == "KZ-VOS" and submission.region.geography == "KZ2013"
    assert submission.stratum == "KZ-VOS-U"
    assert submission.answers["REGION"] == "KZ-10"  # the answer as given


def test_tablet_interview_takes_its_design_from_the_caller():
    wave = instrument_wave()
    submission = submit(
        wave,
        channel="tablet",
        device_id="tab-7",
        design={"psu": "PSU-12", "stratum": "KZ-75-U", "weight": 2.5},
    )
    assert (submission.psu, submission.stratum, submission.weight, submission.device_id) == (
        "PSU-12",
        "KZ-75-U",
        2.5,
        "tab-7",
    )


def test_wave_is_marked_dirty_after_commit(django_capture_on_commit_callbacks):
    wave = instrument_wave()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submit(wave)
    assert not WaveComputation.objects.filter(wave=wave, dirty=True).exists()
    assert len(callbacks) == 1
    callbacks[0]()
    assert WaveComputation.objects.get(wave=wave).dirty


def test_retry_with_the_same_instance_id_stores_one_interview():
    wave = instrument_wave()
    instance = uuid.uuid4()
    first = submit(wave, instance_id=instance)
    again = submit(wave, instance_id=str(instance))
    assert again.pk == first.pk
    assert Submission.objects.count() == 1


def test_different_answers_under_an_existing_instance_id_are_refused():
    wave = instrument_wave()
    instance = uuid.uuid4()
    submit(wave, instance_id=instance)
    with pytest.raises(SubmissionRefused) as caught:
        submit(wave, complete_answers(P1="4"), instance_id=instance, language="en")
    assert caught.value.code == "instance_conflict"
    assert "already received" in caught.value.message
    assert Submission.objects.get().answers["P1"] == 1


def test_invalid_answers_store_nothing_and_leave_the_link_unused(
    django_capture_on_commit_callbacks,
):
    wave = instrument_wave()
    link = create_links(wave=wave, kind="single")[0]
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(AnswerErrors) as caught:
        submit(wave, complete_answers(BIRTH_YEAR="2015"), link=link)
    assert "BIRTH_YEAR" in caught.value.errors
    assert Submission.objects.count() == 0
    assert callbacks == []
    link.refresh_from_db()
    assert link.used_at is None


def test_single_use_link_is_used_once():
    wave = instrument_wave()
    link = create_links(wave=wave, kind="single")[0]
    first = submit(wave, link=link)
    link.refresh_from_db()
    assert link.used_at == timezone.localdate(first.received_at)  # the day, not the interview
    with pytest.raises(SubmissionRefused) as caught:
        submit(wave, link=link, language="ru")
    assert caught.value.code == "link_used"
    assert caught.value.message == "Это приглашение уже использовано."
    assert Submission.objects.count() == 1
    # A retry of the interview that used it is still answered with the stored one.
    assert submit(wave, link=link, instance_id=first.instance_id).pk == first.pk


def test_public_link_takes_many_interviews():
    wave = instrument_wave()
    link = public_link(wave)
    submit(wave, link=link)
    submit(wave, link=link)
    link.refresh_from_db()
    assert link.used_at is None
    assert Submission.objects.count() == 2


def test_revoked_link_is_refused():
    wave = instrument_wave()
    link = public_link(wave)
    InvitationLink.objects.filter(pk=link.pk).update(
        revoked_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    )
    link.refresh_from_db()
    with pytest.raises(SubmissionRefused) as caught:
        submit(wave, link=link)
    assert caught.value.code == "link_revoked"
    assert Submission.objects.count() == 0


def test_closed_wave_refuses_web_but_accepts_a_late_tablet_sync():
    wave = instrument_wave(is_open=False)
    with pytest.raises(SubmissionRefused) as caught:
        submit(wave)
    assert caught.value.code == "wave_closed"
    assert caught.value.message == "Бұл сауалнама жабылды, енді жауаптар қабылданбайды."
    assert submit(wave, channel="tablet").channel == "tablet"


def test_oversized_payload_is_refused():
    wave = instrument_wave()
    answers = complete_answers(R1="3", R1_OTHER="x" * (MAX_ANSWERS_BYTES + 1))
    with pytest.raises(SubmissionRefused) as caught:
        submit(wave, answers, language="en")
    assert caught.value.code == "too_large"
    assert "too large" in caught.value.message
    assert Submission.objects.count() == 0


def test_bad_instance_id_and_language_are_refused():
    wave = instrument_wave()
    with pytest.raises(SubmissionRefused) as caught:
        submit(wave, instance_id="not-a-uuid")
    assert caught.value.code == "instance_id"
    with pytest.raises(SubmissionRefused) as caught:
        submit(wave, language="de")
    assert caught.value.code == "language"


def test_link_of_another_wave_is_refused():
    wave = instrument_wave()
    other = instrument_wave(code="2027")
    with pytest.raises(SubmissionRefused) as caught:
        submit(wave, link=public_link(other))
    assert caught.value.code == "link_wave"


def test_clock_running_backwards_keeps_the_start_only():
    wave = instrument_wave()
    started = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)
    submission = submit(wave, started_at=started, ended_at=started - dt.timedelta(hours=1))
    assert (submission.started_at, submission.ended_at, submission.duration_seconds) == (
        started,
        None,
        None,
    )
