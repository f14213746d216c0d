"""Invariants held by the database itself."""

import datetime as dt
import uuid

import pytest
from django.db import IntegrityError, transaction

from surveys.models import Region, Submission, Wave
from tests.factories import SubmissionFactory, WaveFactory

pytestmark = pytest.mark.django_db


def refused(**changes) -> bool:
    submission = SubmissionFactory.build(wave=WaveFactory(), **changes)
    try:
        with transaction.atomic():
            submission.save()
    except IntegrityError:
        return True
    return False


def test_a_valid_submission_is_stored():
    assert not refused()
    assert Submission.objects.count() == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"urban_rural": 3},
        {"channel": "fax"},
        {"review_status": "maybe"},
        {"weight": 0.0},
        {"language": ""},
    ],
)
def test_invalid_design_fields_are_refused(changes):
    assert refused(**changes)


def test_end_before_start_is_refused():
    now = dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)
    assert refused(started_at=now, ended_at=now - dt.timedelta(minutes=1))


def test_instance_ids_are_unique():
    instance = uuid.uuid4()
    SubmissionFactory(instance_id=instance)
    with pytest.raises(IntegrityError), transaction.atomic():
        SubmissionFactory(instance_id=instance, wave=WaveFactory())


def test_wave_codes_are_unique_per_survey_and_dates_ordered():
    wave = WaveFactory(code="2013")
    with pytest.raises(IntegrityError), transaction.atomic():
        Wave.objects.create(survey=wave.survey, code="2013", geography="KZ2013")
    with pytest.raises(IntegrityError), transaction.atomic():
        Wave.objects.create(
            survey=wave.survey,
            code="X",
            geography="KZ2013",
            fieldwork_start=dt.date(2013, 5, 1),
            fieldwork_end=dt.date(2013, 4, 1),
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Wave.objects.create(survey=wave.survey, code="Y", geography="KZ1999")


def test_a_current_region_must_map_to_a_2013_unit():
    with pytest.raises(IntegrityError), transaction.atomic():
        Region.objects.create(
            geography="KZ2022", code="KZ-99", kind="oblast", name_kk="a", name_ru="b", name_en="c"
        )


def test_form_versions_in_use_cannot_be_deleted():
    from django.db.models import ProtectedError

    submission = SubmissionFactory()
    with pytest.raises(ProtectedError):
        submission.form_version.delete()
