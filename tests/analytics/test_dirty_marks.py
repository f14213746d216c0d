"""The dirty mark of a wave: one read when a coming run will see the interviews, a write
only when none will; no interview committed before its mark is ever left out."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics import services
from analytics.models import WaveComputation
from tests.factories import WaveFactory

pytestmark = pytest.mark.django_db


def writes(queries) -> int:
    return sum(
        1 for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")
    )


def test_a_burst_of_marks_writes_once(django_capture_on_commit_callbacks):
    wave = WaveFactory()
    services.mark_wave_dirty(wave_id=wave.pk)
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        CaptureQueriesContext(connection) as queries,
    ):
        queued = [services.mark_wave_dirty(wave_id=wave.pk) for _ in range(1000)]
    assert not any(queued) and not callbacks
    assert writes(queries) == 0 and len(queries.captured_queries) == 1000
    assert WaveComputation.objects.get(wave=wave).generation == 1


def test_the_first_mark_during_a_run_writes_and_the_run_goes_again():
    wave = WaveFactory()
    services.mark_wave_dirty(wave_id=wave.pk)
    run = services._claim(wave.pk)
    assert run is not None and run.run_generation == run.generation
    with CaptureQueriesContext(connection) as first:
        services.mark_wave_dirty(wave_id=wave.pk)  # arrives after the run read its data
    assert writes(first) >= 1
    with CaptureQueriesContext(connection) as later:
        for _ in range(100):
            services.mark_wave_dirty(wave_id=wave.pk)
    assert writes(later) == 0
    services._finish(wave.pk, run.generation, error="")
    state = WaveComputation.objects.get(wave=wave)
    assert state.dirty and state.scheduled_at is not None and state.run_generation is None


def test_a_mark_after_a_finished_run_writes():
    wave = WaveFactory()
    services.mark_wave_dirty(wave_id=wave.pk)
    run = services._claim(wave.pk)
    services._finish(wave.pk, run.generation, error="")
    assert not WaveComputation.objects.get(wave=wave).dirty
    assert services.mark_wave_dirty(wave_id=wave.pk)
    state = WaveComputation.objects.get(wave=wave)
    assert state.dirty and state.generation == run.generation + 1


def test_a_stale_schedule_or_run_is_not_trusted(settings):
    wave = WaveFactory()
    services.mark_wave_dirty(wave_id=wave.pk)
    settings.COMPUTATION_STALE_SECONDS = 0
    assert services.mark_wave_dirty(wave_id=wave.pk)  # the lost schedule is renewed
    run = services._claim(wave.pk)
    services.mark_wave_dirty(wave_id=wave.pk)
    with CaptureQueriesContext(connection) as queries:
        services.mark_wave_dirty(wave_id=wave.pk)  # a dead runner's claim: write again
    assert writes(queries) >= 1
    assert WaveComputation.objects.get(wave=wave).generation > run.generation + 1


@pytest.mark.parametrize("seed", range(8))
def test_no_interview_is_left_out_whatever_the_order(seed):
    """Interleave commits (each followed by its mark), claims and ends of runs at random:
    whenever the wave ends clean, the last run started after the last commit."""
    import random

    rng = random.Random(seed)
    wave = WaveFactory()
    committed = 0  # interviews committed so far
    seen_by_run: int | None = None  # what the running run read (at its claim)
    last_complete = 0  # what the last finished run read
    for _ in range(200):
        step = rng.choice(["interview", "interview", "claim", "finish"])
        if step == "interview":
            committed += 1
            services.mark_wave_dirty(wave_id=wave.pk)
        elif step == "claim" and seen_by_run is None:
            state = WaveComputation.objects.filter(wave=wave, dirty=True).first()
            if state is not None and services._claim(wave.pk) is not None:
                seen_by_run = committed
        elif step == "finish" and seen_by_run is not None:
            generation = WaveComputation.objects.get(wave=wave).run_generation
            services._finish(wave.pk, generation, error="")
            last_complete, seen_by_run = seen_by_run, None
        state = WaveComputation.objects.filter(wave=wave).first()
        if state is not None and not state.dirty:
            assert last_complete == committed
