"""Identical tablet batches sent at the same moment (PostgreSQL): each interview stored
once, every request answered, the quota counted once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from collect.models import TabletInterview
from collect.sync import sync_interviews
from surveys.models import Submission
from tests.collect.collect_fixtures import assignment_for, bearer, item, tablet_wave, user_in
from tests.conftest import need


@pytest.fixture
def concurrent_field(transactional_db):
    need(connection.vendor == "postgresql", "concurrent writes need PostgreSQL")
    wave = tablet_wave()
    enumerator = user_in("enumerator", "aigerim")
    return assignment_for(enumerator, wave, quota=3), bearer(enumerator)[0]


def _at_once(device, batch, copies: int) -> list[list[dict]]:
    barrier = threading.Barrier(copies)
    answers: list[list[dict]] = []
    failures: list[BaseException] = []

    def send() -> None:
        try:
            barrier.wait()
            answers.append(sync_interviews(device=device, items=batch))
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    return answers


def test_identical_batches_at_once_store_each_interview_once(concurrent_field):
    assignment, device = concurrent_field
    batch = [item(assignment) for _ in range(5)]
    answers = _at_once(device, batch, copies=3)
    assert len(answers) == 3
    for results in answers:
        assert [r["instance_id"] for r in results] == [i["instance_id"] for i in batch]
        assert {r["status"] for r in results} <= {"stored", "duplicate"}
    # Exactly one request stored each interview; the others found it stored.
    for position in range(5):
        statuses = sorted(results[position]["status"] for results in answers)
        assert statuses == ["duplicate", "duplicate", "stored"]
    assert Submission.objects.count() == 5 and TabletInterview.objects.count() == 5
    # The quota of 3 was counted once across the racing requests: two over it.
    assert TabletInterview.objects.filter(over_quota=True).count() == 2
