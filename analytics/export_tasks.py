"""Celery task that builds an export file; the work is in `analytics.exports.run_export_job`."""

from __future__ import annotations

from celery import shared_task

from analytics.exports import run_export_job


@shared_task(acks_late=True, time_limit=4 * 3600, soft_time_limit=4 * 3600 - 60)
def build_export(job_id: int) -> None:
    """Idempotent through ExportJob.status: only a queued job is claimed and built."""
    run_export_job(job_id=job_id)
