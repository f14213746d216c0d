"""Celery tasks of exports: build an export file, merge a wave's store's small segments,
expire old export files. Each takes ids, calls `analytics.exports.jobs` or
`analytics.store`, and returns."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from analytics.dispatch import TRANSIENT_ERRORS
from analytics.exports.jobs import expire_export_files, run_export_job
from analytics.store import update_wave_store


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
    """Bring the wave's store up to date and merge its small segments (idempotent)."""
    return update_wave_store(wave_id)


@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=2, max_retries=3)
def expire_exports() -> list[int]:
    """Delete export files past EXPORT_RETENTION_DAYS (periodic, see CELERY_BEAT_SCHEDULE)."""
    return expire_export_files()
