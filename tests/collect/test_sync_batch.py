"""A large batch (COPY on PostgreSQL, rows built from the checked fields) stores what an
interview sent alone (one INSERT through the model) stores, column for column."""

from __future__ import annotations

import pytest
from django.forms.models import model_to_dict

from collect.bulk_insert import COPY_FROM
from collect.models import TabletInterview
from surveys.models import Submission
from tests.collect.collect_fixtures import item
from tests.collect.test_collect_api import field, sync  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db

# Columns that differ from one interview to the next by design.
OWN = {"id", "instance_id", "received_at"}
AWKWARD_TEXT = 'a "quoted" back\\slash, a tab\there, a new\nline, Қазақша, 😀'


def columns(submission: Submission) -> dict:
    row = model_to_dict(submission, fields=[f.name for f in Submission._meta.concrete_fields])
    return {k: v for k, v in row.items() if k not in OWN}


def test_a_large_batch_stores_what_one_interview_stores(field):  # noqa: F811
    *_, assignment, device, client = field
    alone = item(assignment)
    assert sync(client, [alone])[0]["status"] == "stored"
    batch = [item(assignment) for _ in range(COPY_FROM + 5)]
    # Paradata the JSON writers treat differently: escapes, non-ASCII text, an integer
    # beyond 64 bits (written by the standard library), nested values.
    batch[3]["paradata"]["pages"] = {"1": AWKWARD_TEXT, "2": 2**70, "3": [1.5, None, True]}
    batch[4]["replaces"] = ""  # an empty ``replaces`` is no correction
    results = sync(client, batch)
    assert [r["status"] for r in results] == ["stored"] * len(batch)

    expected = columns(Submission.objects.get(instance_id=alone["instance_id"]))
    stored = {str(s.instance_id): s for s in Submission.objects.select_related("tablet")}
    assert len(stored) == len(batch) + 1
    for sent in batch:
        submission = stored[sent["instance_id"]]
        assert columns(submission) == expected
        assert submission.received_at is not None
        assert submission.tablet.device_id == device.pk
        assert submission.tablet.assignment_id == assignment.pk
        assert submission.tablet.over_quota is False
    kept = stored[batch[3]["instance_id"]].tablet.paradata
    assert kept["pages"] == {"1": AWKWARD_TEXT, "2": 2**70, "3": [1.5, None, True]}
    assert "ip" not in kept and "user_agent" not in kept
    assert kept == {**stored[alone["instance_id"]].tablet.paradata, "pages": kept["pages"]}
    assert TabletInterview.objects.count() == len(batch) + 1

    # Sent again, the whole batch is recognised, row for row.
    assert {r["status"] for r in sync(client, batch)} == {"duplicate"}
    assert Submission.objects.count() == len(batch) + 1
