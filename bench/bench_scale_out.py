"""Scale-out: 4 waves of 250,000 SYNTHETIC interviews recomputed by 1 and then by 2 Celery worker processes on one queue (prefetch 1, as deployed), wall time from queuing the 4 runs until all 4 waves have new current estimates.

The waves (BENCHQ1..4) are generated once per bench database and their stores built
beforehand, so both rounds start from the same state: fresh worker processes (no cell
sums kept, snapshots projected from the stores on disk). The ratio of the two wall times is the figure; this
machine has 2 cores shared with other work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

N = int(os.environ.get("BENCH_SCALE_N", "250000"))
WAVES = 4


def _start_workers(count: int, queue: str, broker: str, media: str, log_dir: Path):
    from bench.bench_freshness import _wait, _worker_env

    workers, logs = [], []
    for i in range(count):
        log = log_dir / f"worker-{count}-{i}.log"
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--pool=solo",
                    "--loglevel=INFO",
                    "-Q",
                    queue,
                    "-n",
                    f"{queue}-{count}-{i}@%h",
                    "--without-mingle",
                    "--without-gossip",
                    f"--logfile={log}",
                ],
                env=_worker_env(queue, broker, media),
            )  # fmt: skip
        )
        logs.append(log)
    for log in logs:
        _wait(lambda log=log: log.exists() and " ready." in log.read_text(), 120, 0.1)
    return workers, logs


def run() -> list[str]:
    from django.conf import settings

    from analytics import snapshot
    from analytics.models import ResultSet, WaveComputation
    from analytics.services import RECOMPUTE
    from bench.bench_estimates import bench_wave
    from bench.bench_freshness import _wait
    from config.celery import app

    broker = (
        os.environ.get("CELERY_BROKER_URL")
        or os.environ.get("REDIS_URL")
        or "redis://127.0.0.1:6379/13"
    )
    queue = f"tanys-bench-scale-{uuid.uuid4().hex[:8]}"
    media = str(Path(settings.MEDIA_ROOT) / "bench-scale-out")
    settings.MEDIA_ROOT = media
    started = time.perf_counter()
    waves = [
        bench_wave(n=N, code=f"BENCHQ{i + 1}", survey_code=f"bench-scale-{i + 1}")
        for i in range(WAVES)
    ]
    for wave in waves:
        snapshot.refresh(wave.pk)
    # No claim or schedule left by an interrupted earlier run of this benchmark.
    WaveComputation.objects.filter(wave__in=waves).update(
        dirty=False, scheduled_at=None, running_since=None, heartbeat_at=None, run_generation=None
    )
    lines = [
        f"{WAVES} waves of {N:,} SYNTHETIC interviews, stores on disk "
        f"({time.perf_counter() - started:.0f} s to find or generate and read)"
    ]
    log_dir = Path(tempfile.mkdtemp(prefix="tanys-scale-"))
    walls = {}
    for count in (1, 2):
        # A queue per round: the export-cache updates a round's runs schedule (a minute
        # later) stay with that round.
        round_queue = f"{queue}-{count}"
        app.conf.update(broker_url=broker, task_always_eager=False, task_default_queue=round_queue)
        workers, logs = _start_workers(count, round_queue, broker, media, log_dir)
        try:
            before = {
                w.pk: ResultSet.objects.filter(wave=w, is_current=True)
                .values_list("pk", flat=True)
                .first()
                for w in waves
            }
            started = time.perf_counter()
            for wave in waves:
                app.send_task(RECOMPUTE, args=[wave.pk, True])

            def all_new(before: dict = before) -> bool:
                now = {
                    w.pk: ResultSet.objects.filter(wave=w, is_current=True)
                    .values_list("pk", flat=True)
                    .first()
                    for w in waves
                }
                return all(now[pk] is not None and now[pk] != before[pk] for pk in now)

            _wait(all_new, 1800, 0.2)
            walls[count] = time.perf_counter() - started
            shares = [log.read_text().count(": result set ") for log in logs]
            # Comparisons with a recomputed wave make the next wave of the survey dirty:
            # let those runs end before the workers stop.
            _wait(lambda: not _busy(waves), 1800, 0.5)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                try:
                    worker.wait(300)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait(30)
        lines.append(
            f"{count} worker{'s' if count > 1 else ''}: {walls[count]:.1f} s wall time for the "
            f"{WAVES} waves (runs per worker: {shares})"
        )
    lines.append(
        f"2 workers vs 1: {walls[1] / walls[2]:.2f}x faster (2 cores, shared with other work)"
    )
    return lines


def _busy(waves) -> bool:
    from django.db.models import Q

    from analytics.models import WaveComputation

    return (
        WaveComputation.objects.filter(wave__in=waves)
        .filter(Q(dirty=True) | Q(running_since__isnull=False))
        .exists()
    )
