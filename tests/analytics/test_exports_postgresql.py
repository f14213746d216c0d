"""The PostgreSQL path of reading interviews: COPY driven by a second thread."""

from __future__ import annotations

import pyarrow as pa
import pytest
from django.db import connection, transaction

from analytics.exports import reader as microdata
from tests.analytics.factories_estimates import instrument_wave
from tests.conftest import need

pytestmark = pytest.mark.django_db


@pytest.fixture
def submissions():
    need(connection.vendor == "postgresql", "the COPY path runs on PostgreSQL only")
    wave = instrument_wave(n=130)
    return microdata.MicrodataSelection(wave_ids=(wave.pk,)).submissions()


def test_copy_batches_hold_the_rows_of_a_plain_cursor_in_order(submissions):
    copied = pa.Table.from_batches(list(microdata.fetch_batches(submissions, batch_size=40)))
    fetched = pa.Table.from_batches(list(microdata._fetch_rows(submissions, 40, None)))
    assert copied.num_rows == fetched.num_rows == 130
    for name in ("instance_id", "region__code", "stratum", "answers_text", "duration_seconds"):
        assert copied.column(name).to_pylist() == fetched.column(name).to_pylist()


def test_stopping_early_leaves_the_connection_usable(submissions):
    batches = microdata.fetch_batches(submissions, batch_size=10)
    assert next(batches).num_rows == 10
    batches.close()  # the rest of the COPY is read out by its thread
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_failing_copy_is_raised_to_the_reader(submissions, monkeypatch):
    def broken(_submissions, _limit):
        return microdata.Submission.objects.extra(where=["1 / (id - id) = 1"]).values_list("id")

    monkeypatch.setattr(microdata, "fetch_queryset", broken)
    with pytest.raises(Exception, match="division by zero"), transaction.atomic():
        list(microdata.fetch_batches(submissions))
    with connection.cursor() as cursor:
        cursor.execute("SELECT 2")
        assert cursor.fetchone() == (2,)
