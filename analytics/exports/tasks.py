"""Celery tasks of exports: build an export file, keep a wave's export cache current,
expire old export files. Each takes ids, calls `analytics.exports.jobs` or
`analytics.exports.cache`, and returns."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from analytics.dispatch import TRANSIENT_ERRORS
from analytics.exports.cache import update_wave_cache
from analytics.exports.jobs import expire_export_files, run_export_job


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=settings.EXPORT_TIME_LIMIT,
    # a minute (a tenth of a short limit) to record the failure before the hard limit
    soft_time_limit=settings.EXPORT_TIME_LIMIT - min(60, settings.EXPORT_TIME_LIMIT // 10),
)
def build_export(job_id: int) -> None:
    """Idempotent through ExportJob.status: only a queued (or stale) job is claimed."""
    run_export_job(job_id=job_id)


@shared_task(
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    max_retries=6,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def update_export_cache(wave_id: int) -> int:
    """Parse the wave's new interviews into its export cache (idempotent: only missing ones)."""
    return update_wave_cache(wave_id)


@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=2, max_retries=3)
def expire_exports() -> list[int]:
    """Delete export files past EXPORT_RETENTION_DAYS (periodic, see CELERY_BEAT_SCHEDULE)."""
    return expire_export_files()
