"""End to end with a real Celery worker process on Redis and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pytest
import redis

from analytics import services, snapshot
from analytics.computation import compute_wave
from analytics.models import ResultSet, WaveComputation
from analytics.selectors import current_estimates
from surveys.demo import RATES_CURRENT, generate_wave
from tests.conftest import redis_broker, sending_to
from tests.factories import WaveFactory

pytestmark = [
    pytest.mark.worker,
    # the flush after each test would drop the regions loaded by a data migration
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def wait_for(condition, timeout: float = 90.0, every: float = 0.05, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def current_set(wave, n: int | None = None) -> ResultSet | None:
    found = ResultSet.objects.filter(wave=wave, is_current=True).first()
    if found is not None and n is not None and found.n_interviews != n:
        return None
    return found


def add_interviews(wave, n: int, seed: int) -> None:
    generate_wave(wave=wave, form_version=wave.form_version, n=n, seed=seed, rates=RATES_CURRENT)


def test_worker_brings_stored_estimates_up_to_date_equal_to_a_fresh_computation(
    celery_worker_process, settings, tmp_path
):
    wave = WaveFactory(geography="KZ2022", fieldwork_start=dt.date(2026, 3, 1))
    add_interviews(wave, 1500, seed=1)
    services.mark_wave_dirty(wave_id=wave.pk)
    first = wait_for(lambda: current_set(wave, 1500), what="the first result set")
    before = current_estimates(wave=wave, indicator="PERC_BRIBE", region="national").get()

    add_interviews(wave, 1000, seed=2)
    for _ in range(1000):  # one mark per committed interview, as the web form does
        services.mark_wave_dirty(wave_id=wave.pk)
    latest = wait_for(lambda: current_set(wave, 2500), what="the updated result set")
    assert latest.pk != first.pk
    # The burst of 1,000 marks (about 3 s of commits) was coalesced into a few runs of about a
    # second each, not one per mark; exactly one queued task per burst is checked on the
    # broker by test_a_burst_of_marks_puts_one_task_on_the_broker.
    runs = ResultSet.objects.filter(wave=wave, started_at__gt=first.started_at).count()
    assert 1 <= runs <= 10
    after = current_estimates(wave=wave, indicator="PERC_BRIBE", region="national").get()
    assert after.n > before.n and after.estimate != before.estimate
    try:
        wait_for(lambda: not WaveComputation.objects.get(wave=wave).dirty, what="a clean wave")
    except AssertionError:
        print(WaveComputation.objects.filter(wave=wave).values().get())
        print(celery_worker_process.output()[-3000:])
        raise

    # A fresh recomputation in this process, from a snapshot built from scratch.
    settings.MEDIA_ROOT = tmp_path / "fresh"
    fresh_snapshot, how = snapshot.refresh(wave.pk)
    assert how == "rebuilt"
    fresh = compute_wave(wave, fresh_snapshot)
    stored = {(e.indicator, e.geography, e.region_id): e for e in current_estimates(wave=wave)}
    assert len(stored) == len(fresh.rows)
    for row in fresh.rows:
        cell = stored[(row["indicator"], row["geography"], row["region"] and row["region"].pk)]
        for field in ("estimate", "se", "ci_low", "ci_high", "n", "diff_vs_rest_p_adjusted"):
            expected, got = row.get(field), getattr(cell, field)
            if expected is None:
                assert got is None
            else:
                assert got == pytest.approx(expected, rel=1e-12), (row["indicator"], field)
    assert fresh.data_version == latest.data_version


def test_a_worker_killed_mid_computation_leaves_the_previous_set_and_the_next_worker_completes(
    celery_worker_process,
):
    wave = WaveFactory(geography="KZ2022", fieldwork_start=dt.date(2026, 3, 1))
    add_interviews(wave, 60_000, seed=3)
    services.mark_wave_dirty(wave_id=wave.pk)
    first = wait_for(lambda: current_set(wave, 60_000), timeout=180, what="the first set")

    add_interviews(wave, 2_000, seed=4)
    services.mark_wave_dirty(wave_id=wave.pk)
    wait_for(
        lambda: WaveComputation.objects.filter(
            wave=wave, running_since__isnull=False, stage="estimates"
        ).exists(),
        every=0.005,
        what="the computation to start",
    )
    celery_worker_process.kill()
    # The interrupted run wrote nothing visible: the previous set is still current.
    assert current_set(wave).pk == first.pk
    assert WaveComputation.objects.get(wave=wave).dirty
    assert np.isclose(
        current_estimates(wave=wave, indicator="NET_EVER", region="national").get().n,
        first.estimates.get(indicator="NET_EVER", region=None).n,
    )

    celery_worker_process.start()
    latest = wait_for(lambda: current_set(wave, 62_000), timeout=180, what="the new set")
    assert latest.pk != first.pk
    assert ResultSet.objects.filter(wave=wave, is_current=True).count() == 1


def test_a_burst_of_marks_puts_one_task_on_the_broker(transactional_db):
    """Counted on Redis itself: no worker consumes this queue."""
    broker = redis_broker()
    queue = f"tanys-burst-{time.time_ns()}"
    client = redis.Redis.from_url(broker)
    try:
        with sending_to(broker, queue):
            wave = WaveFactory()
            for _ in range(1000):
                services.mark_wave_dirty(wave_id=wave.pk)
        assert client.llen(queue) == 1
        # the first mark wrote; the others found the queued run that will read their interviews
        assert WaveComputation.objects.get(wave=wave).generation == 1
    finally:
        client.delete(queue)


def test_the_worker_caches_the_question_summaries_of_each_new_result_set(
    celery_worker_process, settings, monkeypatch
):
    from analytics import summaries

    location = settings.CACHES["default"].get("LOCATION")
    if not isinstance(location, str) or not location.startswith("redis"):
        pytest.skip("the worker shares the cache through Redis (REDIS_URL)")
    with redis.Redis.from_url(location) as client:  # what an earlier run may have left
        for pattern in ("*question-summaries:*", "*summaries-warm:*"):
            for key in client.scan_iter(pattern):
                client.delete(key)
    wave = WaveFactory(geography="KZ2022", fieldwork_start=dt.date(2026, 3, 1))
    add_interviews(wave, 400, seed=5)
    services.mark_wave_dirty(wave_id=wave.pk)
    wait_for(lambda: current_set(wave, 400), what="the result set")

    def refuse(*args, **kwargs):
        raise AssertionError("computed in the test process")

    monkeypatch.setattr(summaries, "compute_summaries", refuse)

    def warmed():
        try:
            return summaries.wave_summaries(wave, "sex")
        except AssertionError:
            return None

    found = wait_for(warmed, what="the worker's summaries")
    assert found.n_interviews == 400 and [g for g, _labels in found.groups] == [0, 1]
    assert found.questions and any(not c.suppressed for c in found.questions[0].cells[1:])
