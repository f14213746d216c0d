"""The estimation's snapshot of a wave, projected from the wave's store: codes, incremental
appends, reconciliation, and one parse of each interview for estimates and exports."""

from __future__ import annotations

import numpy as np
import pytest

from analytics import snapshot
from analytics.exports.reader import wave_answers_schema
from analytics.indicators import NOT_ASKED
from analytics.store import WaveStore
from surveys.models import Region, Submission
from tests.factories import SubmissionFactory, WaveFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def interview(wave, **answers):
    return SubmissionFactory(
        wave=wave, region=Region.objects.of(wave.geography).first(), answers=answers
    )


def test_codes_are_extracted_with_missing_and_odd_answers_as_not_asked():
    wave = WaveFactory()
    a = interview(wave, P1=2, E1=-2, M=["M1", "M3"], AGE=40, SEX=1)
    b = interview(wave, P1="3", E1="x", M="M2 M7", AGE=35.0)
    c = interview(wave, P1=None, M=[])
    snap, how = snapshot.refresh(wave.pk)
    assert how == "rebuilt" and snap.n == 3
    cols = snap.columns
    assert cols["id"].tolist() == [a.pk, b.pk, c.pk]
    assert cols["P1"].tolist() == [2, 3, NOT_ASKED]
    assert cols["E1"].tolist() == [-2, NOT_ASKED, NOT_ASKED]
    assert cols["M_MASK"].tolist() == [0b101, 0b1000010, NOT_ASKED]
    assert cols["AGE"].tolist() == [40, 35, NOT_ASKED]
    assert cols["SEX"].tolist() == [1, NOT_ASKED, NOT_ASKED]
    assert snap.psu_labels().tolist() == [a.psu, b.psu, c.psu]
    assert cols["weight"].tolist() == [1.0, 1.0, 1.0]


def segments(wave):
    return sorted(WaveStore(wave.pk).folder.glob("seg-*.arrow"))


def test_new_interviews_are_appended_from_one_new_segment_of_the_store():
    wave = WaveFactory()
    [interview(wave, P1=1) for _ in range(3)]
    snap, how = snapshot.refresh(wave.pk)
    assert how == "rebuilt" and snap.n == 3 and len(segments(wave)) == 1
    later = interview(wave, P1=4)
    snap, how = snapshot.refresh(wave.pk)
    assert how == "appended" and snap.n == 4 and snap.max_id == later.pk
    assert snap.columns["P1"].tolist() == [1, 1, 1, 4]
    assert len(segments(wave)) == 2
    assert snapshot.refresh(wave.pk)[1] == "current"
    assert len(segments(wave)) == 2


def test_each_interview_is_parsed_once_for_the_estimates_and_the_exports():
    wave = WaveFactory()
    rows = [interview(wave, P1=k % 4 + 1) for k in range(5)]
    snapshot.refresh(wave.pk)
    stored = segments(wave)
    # an export reads what the estimation brought into the store: nothing new is parsed
    exported = list(WaveStore(wave.pk).raw_batches(wave_answers_schema(wave.pk)))
    assert [int(i) for batch in exported for i in batch.ids.to_pylist()] == [r.pk for r in rows]
    assert segments(wave) == stored
    # a process that has no snapshot projects the store, without reading answers again
    snapshot._MEMORY.clear()
    snap, how = snapshot.refresh(wave.pk)
    assert how == "rebuilt" and snap.columns["P1"].tolist() == [1, 2, 3, 4, 1]
    assert segments(wave) == stored


def test_rejected_deleted_and_late_interviews_are_reconciled():
    wave = WaveFactory()
    rows = [interview(wave, P1=k % 4 + 1) for k in range(6)]
    ids = [r.pk for r in rows]
    snapshot.refresh(wave.pk)
    Submission.objects.filter(pk=rows[1].pk).update(review_status="rejected")
    late_id = rows[3].pk
    answers = rows[3].answers
    rows[3].delete()
    snap, how = snapshot.refresh(wave.pk)
    assert how == "reconciled"
    assert snap.columns["id"].tolist() == [pk for i, pk in enumerate(ids) if i not in (1, 3)]
    # a transaction that committed late with a lower id than the snapshot's highest
    SubmissionFactory(id=late_id, wave=wave, region=rows[0].region, answers=answers)
    Submission.objects.filter(pk=rows[1].pk).update(review_status="approved")
    snap, how = snapshot.refresh(wave.pk)
    assert how == "reconciled"
    assert snap.columns["id"].tolist() == ids
    assert snap.columns["P1"].tolist() == [1, 2, 3, 4, 1, 2]


def test_a_new_data_epoch_rebuilds():
    wave = WaveFactory()
    row = interview(wave, P1=1)
    snapshot.refresh(wave.pk)
    Submission.objects.filter(pk=row.pk).update(answers={"P1": 3})
    assert snapshot.refresh(wave.pk)[0].columns["P1"].tolist() == [1]  # edit in place unseen
    snap, how = snapshot.refresh(wave.pk, epoch=1)
    assert how == "rebuilt" and snap.columns["P1"].tolist() == [3]


def test_an_unreadable_store_is_rebuilt():
    wave = WaveFactory()
    interview(wave, P1=2)
    snapshot.refresh(wave.pk)
    segments(wave)[0].write_bytes(b"not a segment")
    snapshot._MEMORY.clear()
    snap, how = snapshot.refresh(wave.pk)
    assert how == "rebuilt" and snap.columns["P1"].tolist() == [2]


def test_strata_and_psus_keep_their_codes_across_appends():
    wave = WaveFactory()
    interview(wave, P1=1)
    snapshot.refresh(wave.pk)
    SubmissionFactory(
        wave=wave, region=Region.objects.of("KZ2022").first(), stratum="S9", psu="P,9"
    )
    snap, _ = snapshot.refresh(wave.pk)
    assert snap.stratum_labels().tolist() == ["S1", "S9"]
    assert snap.psu_labels()[-1] == "P,9"
    assert np.issubdtype(snap.columns["psu"].dtype, np.integer)


def test_only_the_ranges_of_ids_that_changed_are_listed_again(monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from analytics import store

    monkeypatch.setattr(store, "ID_RANGE", 4)  # ids fall into several ranges
    wave = WaveFactory()
    rows = [interview(wave, P1=k % 4 + 1) for k in range(14)]
    snapshot.refresh(wave.pk)
    ids = [r.pk for r in rows]
    gone = {1, 5, 12}
    touched = {ids[i] // 4 for i in gone}
    for i in gone:
        rows[i].delete()
    with CaptureQueriesContext(connection) as queries:
        snap, how = snapshot.refresh(wave.pk)
    assert how == "reconciled"
    assert snap.columns["id"].tolist() == [pk for i, pk in enumerate(ids) if i not in gone]
    listings = [q["sql"] for q in queries.captured_queries if '"id" >= ' in q["sql"]]
    assert len(listings) == len(touched) < 4  # not the whole wave's ids
