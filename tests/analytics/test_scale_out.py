"""Two real Celery worker processes on one queue (prefetch 1, as deployed) recompute
several waves at once, and never the same wave at the same time."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from analytics import services
from analytics.models import ResultSet, WaveComputation
from config.celery import app
from surveys.demo import RATES_CURRENT, generate_wave
from tests.analytics.test_worker import wait_for
from tests.factories import WaveFactory

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

RUN = re.compile(
    r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] wave (\d+): result set "
    r"\d+, \d+ interviews \(snapshot \w+\) in ([\d.]+) s"
)


def runs(workers) -> list[tuple[int, int, float, float]]:
    """(worker, wave, start, end) of every finished run in the workers' logs."""
    found = []
    for i, worker in enumerate(workers):
        for stamp, wave, seconds in RUN.findall(worker.output()):
            end = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            found.append((i, int(wave), end - float(seconds), end))
    return found


@pytest.mark.parametrize("celery_worker_process", [2], indirect=True)
def test_two_workers_share_the_waves_and_never_run_one_twice_at_once(celery_worker_process):
    workers = celery_worker_process
    waves = [
        WaveFactory(geography="KZ2022", fieldwork_start=dt.date(2026, 3, i + 1)) for i in range(4)
    ]
    for i, wave in enumerate(waves):
        generate_wave(wave=wave, form_version=wave.form_version, n=400, seed=i, rates=RATES_CURRENT)
    for wave in waves:
        services.mark_wave_dirty(wave_id=wave.pk)
    for wave in waves:
        wait_for(
            lambda w=wave: ResultSet.objects.filter(wave=w, is_current=True, n_interviews=400),
            what=f"wave {wave.pk}",
        )
    done = runs(workers)
    assert {i for i, *_ in done} == {0, 1}  # both processes computed waves

    # The same wave asked of both workers at once: the second finds it held.
    target = waves[0]
    sent = [app.tasks[services.RECOMPUTE].apply_async(args=[target.pk, True]) for _ in range(4)]

    def outcomes() -> list[str]:
        logs = "".join(w.output() for w in workers)
        return re.findall(
            rf"\[({'|'.join(t.id for t in sent)})\] succeeded in [\d.]+s: '([\w ]+)'", logs
        )

    wait_for(lambda: len(outcomes()) == 4, 120, 0.2, what="the forced runs")
    wait_for(
        lambda: WaveComputation.objects.filter(wave=target, running_since__isnull=True).exists(),
        what="the last run to end",
    )
    results = [outcome for _, outcome in outcomes()]
    assert "busy" in results and "computed" in results, results  # one found it held
    for wave in waves:  # one run of a wave at a time, whichever worker
        same = sorted((start, end) for _, w, start, end in runs(workers) if w == wave.pk)
        for (_, end), (start, _) in zip(same, same[1:], strict=False):
            assert start >= end - 0.01, same
