"""Freshness: with a real Celery worker and a stored wave of 1,000,000 interviews, the time from committing a batch of 1,000 new interviews until the stored estimates include them.

A worker subprocess (`celery -A config worker --pool=solo`) runs against this database
and Redis on a queue of its own. After a warm-up run, each round commits 1,000 SYNTHETIC
interviews in one transaction, marks the wave dirty once per interview (as the web form
does after each commit) and polls until the current result set counts them. The added
interviews are removed at the end, so the wave stays at its size. Goal: < 1.5 s.
With BENCH_FRESHNESS_MARGINS=1 the wave is first given population margins (its own
weighted totals, perturbed; removed at the end), so every run rakes. Goal: < 5 s.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROUNDS = int(os.environ.get("BENCH_FRESHNESS_ROUNDS", "3"))
BATCH = 1000


def _worker_env(queue: str, broker: str, media: str) -> dict[str, str]:
    from django.conf import settings

    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "MEDIA_ROOT": media,
    }


def _wait(condition, timeout: float, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError


def run() -> list[str]:
    from django.conf import settings

    from analytics.models import ResultSet
    from analytics.services import mark_wave_dirty
    from bench.bench_estimates import bench_wave
    from config.celery import app
    from surveys.demo import RATES_CURRENT, generate_wave

    broker = (
        os.environ.get("CELERY_BROKER_URL")
        or os.environ.get("REDIS_URL")
        or "redis://127.0.0.1:6379/13"
    )
    queue = f"tanys-bench-{uuid.uuid4().hex[:8]}"
    media = str(Path(settings.MEDIA_ROOT) / "bench-freshness")
    settings.MEDIA_ROOT = media
    app.conf.update(broker_url=broker, task_always_eager=False, task_default_queue=queue)
    wave = bench_wave()
    margins = None
    if os.environ.get("BENCH_FRESHNESS_MARGINS") == "1":
        margins = _store_margins(wave)
    base_n = wave.submissions.exclude(review_status="rejected").count()
    # Every interview above this id is one of the rounds', removed at the end even when a
    # round times out (the rounds' fixed seeds would collide with them in the next run).
    before_rounds = wave.submissions.order_by("-id").values_list("id", flat=True).first() or 0
    log = Path(tempfile.mkdtemp(prefix="tanys-worker-")) / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
         "--loglevel=INFO", "-Q", queue, "-n", f"{queue}@%h", "--without-mingle",
         "--without-gossip", f"--logfile={log}"],
        env=_worker_env(queue, broker, media),
    )  # fmt: skip
    lines = []
    try:
        _wait(lambda: log.exists() and " ready." in log.read_text(), 60, 0.1)

        def current_count() -> int:
            found = ResultSet.objects.filter(wave=wave, is_current=True).first()
            return found.n_interviews if found else -1

        started = time.perf_counter()
        mark_wave_dirty(wave_id=wave.pk)
        _wait(lambda: current_count() == base_n and not _dirty(wave), 600, 0.2)
        lines.append(
            f"warm-up: the worker's first run on {base_n:,} interviews (snapshot, cell sums, "
            f"estimates): {time.perf_counter() - started:.1f} s"
        )
        timings = []
        expected = base_n
        for round_ in range(ROUNDS):
            generate_wave(
                wave=wave,
                form_version=wave.form_version,
                n=BATCH,
                seed=7_000 + round_,
                rates=RATES_CURRENT,
            )
            committed = time.perf_counter()
            expected += BATCH
            watcher = Watcher(wave.pk, expected, committed)
            watcher.start()
            for _ in range(BATCH):  # as 1,000 web-form commits would, one mark each
                mark_wave_dirty(wave_id=wave.pk)
            marked = time.perf_counter() - committed
            watcher.join(120)
            if watcher.reflected_after is None:
                raise TimeoutError("the estimates did not reflect the new interviews in 120 s")
            timings.append(watcher.reflected_after)
            lines.append(
                f"round {round_ + 1}: {BATCH} interviews committed -> reflected in the stored "
                f"estimates after {timings[-1]:.2f} s (the {BATCH} marks, made meanwhile, took "
                f"{marked:.2f} s)"
            )
            _wait(lambda: not _dirty(wave), 120)
        lines.append(
            f"freshness: median {statistics.median(timings):.2f} s, worst {max(timings):.2f} s "
            f"(goal < {5 if margins is not None else 1.5} s); worker runs: "
            + "; ".join(
                line.split("INFO/MainProcess] ")[1]
                for line in log.read_text().splitlines()
                if "result set" in line
            )[-400:]
        )
    finally:
        if wave.submissions.filter(pk__gt=before_rounds).exists():
            wave.submissions.filter(pk__gt=before_rounds).delete()
            mark_wave_dirty(wave_id=wave.pk)
            try:
                _wait(
                    lambda: ResultSet.objects.filter(
                        wave=wave, is_current=True, n_interviews=base_n
                    ).exists(),
                    300,
                    0.5,
                )
            except TimeoutError:
                lines.append("cleanup: the wave was not recomputed within 300 s")
        worker.terminate()  # a warm shutdown waits for the task under way
        try:
            worker.wait(120)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(30)
        if margins is not None:
            margins.delete()
            mark_wave_dirty(wave_id=wave.pk)
    if margins is not None:
        lines.insert(0, f"the wave raked to population margins ({margins.weights_label})")
    return lines


def _store_margins(wave):
    from analytics import computation, snapshot
    from analytics.models import PopulationMargins
    from bench.bench_estimates import margins_table

    snap, _ = snapshot.refresh(wave.pk)
    sets = computation.domain_sets(wave, snap.columns["region_id"])
    codes = np.array([r.code for r in sets[0].regions] + [""], dtype=object)[sets[0].codes]
    table = margins_table(snap, codes, wave.fieldwork_start.year)
    latest = PopulationMargins.objects.filter(wave=wave).order_by("-version").first()
    margins = PopulationMargins.objects.create(
        wave=wave, version=(latest.version + 1) if latest else 1, source="bench", table=table
    )
    margins.weights_label = f"margins-v{margins.version}"
    return margins


class Watcher(threading.Thread):
    """Polls (on its own connection) until the current result set counts ``expected``."""

    def __init__(self, wave_id: int, expected: int, since: float) -> None:
        super().__init__(daemon=True)
        self.wave_id, self.expected, self.since = wave_id, expected, since
        self.reflected_after: float | None = None

    def run(self) -> None:
        from django.db import connection

        from analytics.models import ResultSet

        try:
            deadline = time.perf_counter() + 120
            while time.perf_counter() < deadline:
                if ResultSet.objects.filter(
                    wave_id=self.wave_id, is_current=True, n_interviews__gte=self.expected
                ).exists():
                    self.reflected_after = time.perf_counter() - self.since
                    return
                time.sleep(0.02)
        finally:
            connection.close()


def _dirty(wave) -> bool:
    from analytics.models import WaveComputation

    return WaveComputation.objects.filter(wave=wave, dirty=True).exists()
