"""Celery tasks of exports: build an export file, keep a wave's export cache current.

The work is in `analytics.exports.run_export_job` and `analytics.microdata.update_wave_cache`.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from analytics.exports import run_export_job
from analytics.microdata import update_wave_cache
from analytics.tasks import TRANSIENT_ERRORS


@shared_task(acks_late=True, time_limit=4 * 3600, soft_time_limit=4 * 3600 - 60)
def build_export(job_id: int) -> None:
    """Idempotent through ExportJob.status: only a queued job is claimed and built."""
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
