"""Celery tasks for analytics: thin wrappers over `analytics.services`."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.core.cache import cache

from analytics import services, summaries
from analytics.dispatch import TRANSIENT_ERRORS
from analytics.exports.jobs import resume_export_jobs

log = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=6,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def recompute_wave_estimates(wave_id: int, force: bool = False) -> str:
    """Bring one wave's stored estimates up to date (coalesced, idempotent)."""
    return services.run_recomputation(wave_id=wave_id, force=force)


@shared_task(
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    max_retries=3,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def warm_question_summaries(wave_id: int) -> list[str]:
    """Cache the question summaries of the wave's current result set, every breakdown
    (idempotent: only those not cached yet)."""
    cache.delete(services.WARM_QUEUED_KEY.format(wave_id=wave_id))  # later runs queue again
    return summaries.warm_summaries(wave_id)


@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=2, max_retries=3)
def resume_pending_work() -> dict[str, list[int]]:
    """Periodic sweep (CELERY_BEAT_SCHEDULE): queue the recomputations and export jobs
    whose message never reached the broker or whose worker died."""
    return {
        "waves": services.resume_pending_computations(unscheduled_only=True),
        "export_jobs": resume_export_jobs(),
    }


@worker_ready.connect
def resume_after_restart(sender: object = None, **kwargs: object) -> None:
    """A worker that starts picks up waves left dirty or interrupted by a dead worker, and
    export jobs whose worker died."""
    try:
        queued = services.resume_pending_computations()
        jobs = resume_export_jobs(queued_for=timedelta(0))
    except Exception:  # never keep a worker from starting
        log.exception("could not resume pending work")
        return
    if queued or jobs:
        log.info("queued recomputation of waves %s and export jobs %s", queued, jobs)
