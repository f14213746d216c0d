"""The store of a wave as the exports read it: interviews parsed once, exports equal to
reading them live."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest
from django.contrib.auth import get_user_model

from analytics.exports.batches import iter_microdata_batches
from analytics.exports.reader import MicrodataSelection
from analytics.services import interviews_changed
from analytics.store import MAX_SEGMENTS, WaveStore, update_wave_store
from surveys.models import Submission
from surveys.services import review_interviews
from tests.analytics.factories_estimates import instrument_wave

pytestmark = pytest.mark.django_db


def _columns(selection: MicrodataSelection, *, use_cache: bool) -> pa.Table:
    codebook = selection.codebook()
    batches = list(iter_microdata_batches(selection, codebook, batch_size=7, use_cache=use_cache))
    names = [v.name for v in codebook.variables]
    return pa.Table.from_batches(
        [pa.RecordBatch.from_arrays([b.columns[n] for n in names], names=names) for b in batches]
    )


def _export(wave, **options) -> pa.Table:
    return _columns(MicrodataSelection(wave_ids=(wave.pk,), **options), use_cache=True)


def _ids(table: pa.Table) -> list[str]:
    return table.column("interview_id").to_pylist()


def _segments(wave) -> int:
    return len(list(WaveStore(wave.pk).folder.glob("seg-*.arrow")))


@pytest.fixture
def wave():
    return instrument_wave(n=40)


def test_cached_columns_equal_the_live_ones_across_waves_reviews_and_enumerators():
    first = instrument_wave("2013", n=30, seed=1)
    second = instrument_wave("2026", n=25, seed=2)
    user = get_user_model().objects.create_user("enumerator")
    some = Submission.objects.filter(wave=second).order_by("id").values_list("pk", flat=True)[:5]
    Submission.objects.filter(pk__in=list(some)).update(enumerator=user, channel="tablet")
    rejected = list(Submission.objects.filter(wave=first).values_list("pk", flat=True)[:3])
    review_interviews(submissions=rejected, status="rejected", actor=None)
    selection = MicrodataSelection(wave_ids=(second.pk, first.pk), language="kk")

    cached = _columns(selection, use_cache=True)
    live = _columns(selection, use_cache=False)

    assert cached.num_rows == 52
    assert cached.equals(live)
    assert set(cached.column("enumerator").to_pylist()) == {0, 1}
    # wave by wave (in wave order), interviews in id order within a wave
    assert cached.column("wave").to_pylist() == [2013] * 27 + [2026] * 25


def test_new_interviews_are_appended_without_parsing_the_others_again(wave):
    assert len(_export(wave)) == 40
    assert _segments(wave) == 1
    template = Submission.objects.filter(wave=wave).first()
    template.pk, template.instance_id = None, uuid.uuid4()
    template.save()  # a new interview with a new id and instance id
    table = _export(wave)
    assert len(table) == 41
    assert _ids(table)[-1] == str(template.instance_id)
    assert _segments(wave) == 2
    _export(wave)
    assert _segments(wave) == 2  # nothing new: nothing written


def test_review_decisions_take_effect_without_parsing_again(wave):
    ids = _ids(_export(wave))
    target = Submission.objects.get(instance_id=ids[5])
    review_interviews(submissions=[target.pk], status="rejected", actor=None)
    assert ids[5] not in _ids(_export(wave))
    review_interviews(submissions=[target.pk], status="approved", actor=None)
    assert _ids(_export(wave)) == ids
    assert _segments(wave) == 1


def test_interviews_committed_late_with_a_lower_id_and_deleted_ones_are_reconciled():
    elsewhere = instrument_wave("2026", n=2, seed=3)
    wave = instrument_wave("2013", n=20, seed=4)
    before = _ids(_export(wave))
    late = Submission.objects.filter(wave=elsewhere).order_by("id").first()
    assert late.pk < min(Submission.objects.filter(wave=wave).values_list("pk", flat=True))
    Submission.objects.filter(pk=late.pk).update(wave=wave)  # as if its commit came late
    gone = Submission.objects.get(instance_id=before[3])
    gone.delete()

    after = _ids(_export(wave))

    assert after == [str(late.instance_id)] + [i for i in before if i != str(gone.instance_id)]
    live = _columns(MicrodataSelection(wave_ids=(wave.pk,)), use_cache=False)
    assert _export(wave).equals(live)


def test_answers_edited_in_place_start_a_new_cache(wave):
    _export(wave, values="codes")
    old_folder = WaveStore(wave.pk).folder
    target = Submission.objects.filter(wave=wave).order_by("id").first()
    target.answers = {**target.answers, "HH_SIZE": 11}
    target.save()
    interviews_changed(wave_ids=[wave.pk], answers_edited=True)

    table = _export(wave, values="codes")

    assert WaveStore(wave.pk).folder != old_folder
    assert not old_folder.exists()
    assert table.column("HH_SIZE").to_pylist()[0] == 11


def test_two_processes_appending_the_same_interviews_give_each_interview_once(wave):
    cache = WaveStore(wave.pk)
    cache.folder.mkdir(parents=True)
    everything = Submission.objects.filter(wave=wave)
    assert cache._append(everything) == cache._append(everything) == 40

    table = _export(wave)

    assert len(table) == 40 and len(set(_ids(table))) == 40
    update_wave_store(wave.pk)  # the worker merges the copies away
    assert _segments(wave) == 1
    assert _export(wave).equals(table)


def test_a_damaged_cache_is_rebuilt_and_the_export_goes_on(wave):
    expected = _export(wave)
    segment = next(WaveStore(wave.pk).folder.glob("seg-*.arrow"))
    segment.write_bytes(segment.read_bytes()[:200])
    assert _export(wave).equals(expected)
    assert not segment.exists()


def test_small_segments_are_merged_and_exports_are_unchanged(wave):
    expected = _export(wave)
    cache = WaveStore(wave.pk)
    template = Submission.objects.filter(wave=wave).first()
    for _ in range(MAX_SEGMENTS + 2):  # one new interview after each recomputation
        template.pk, template.instance_id = None, uuid.uuid4()
        template.save()
        update_wave_store(wave.pk)
    assert _segments(wave) <= MAX_SEGMENTS  # 19 without merging
    table = _export(wave)
    assert _ids(table)[:40] == _ids(expected) and len(table) == 40 + MAX_SEGMENTS + 2
    assert table.equals(_columns(MicrodataSelection(wave_ids=(wave.pk,)), use_cache=False))
    assert cache.update() == 0


def test_merging_while_an_export_reads_does_not_disturb_it(wave):
    for _ in range(MAX_SEGMENTS + 1):
        template = Submission.objects.filter(wave=wave).first()
        template.pk, template.instance_id = None, uuid.uuid4()
        template.save()
        WaveStore(wave.pk).update()
    reading = iter_microdata_batches(
        MicrodataSelection(wave_ids=(wave.pk,)), MicrodataSelection(wave_ids=(wave.pk,)).codebook()
    )
    first = next(reading)
    assert WaveStore(wave.pk).compact()
    rest = sum(batch.length for batch in reading)
    assert first.length + rest == 40 + MAX_SEGMENTS + 1


def test_a_limit_spans_waves_in_order():
    first = instrument_wave("2013", n=6, seed=5)
    second = instrument_wave("2026", n=6, seed=6)
    table = _columns(MicrodataSelection(wave_ids=(first.pk, second.pk), limit=9), use_cache=True)
    assert table.column("wave").to_pylist() == [2013] * 6 + [2026] * 3


def test_an_export_of_an_empty_store_fills_it_first(wave):
    rejected = list(Submission.objects.filter(wave=wave).values_list("pk", flat=True)[:4])
    review_interviews(submissions=rejected, status="rejected", actor=None)
    assert not WaveStore(wave.pk).folder.exists()

    table = _export(wave)

    assert len(table) == 36
    assert table.equals(_columns(MicrodataSelection(wave_ids=(wave.pk,)), use_cache=False))
    assert _segments(wave) == 1
    assert WaveStore(wave.pk).update() == 0  # every interview stored, the rejected too
    assert _export(wave).equals(table)


def test_the_recomputation_fills_the_store_the_exports_read(wave, embedded_tasks, settings):
    from django.core.cache import cache

    from analytics.services import schedule_export_cache_update
    from analytics.tasks import recompute_wave_estimates

    cache.clear()
    settings.EXPORT_CACHE_DELAY = 60
    assert not WaveStore(wave.pk).folder.exists()
    recompute_wave_estimates(wave.pk, force=True)
    assert _segments(wave) == 1
    assert WaveStore(wave.pk).update() == 0  # already holds every interview
    # within the period, later recomputations are covered by the update already queued
    assert not schedule_export_cache_update(wave_id=wave.pk)
