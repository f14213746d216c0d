"""Celery tasks for analytics: thin wrappers over `analytics.services`."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from analytics import services

log = logging.getLogger(__name__)

# Only errors that a later attempt can get past; anything else is a bug to report.
TRANSIENT_ERRORS = (OperationalError, RedisConnectionError, ConnectionError)


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
    outcome = services.recompute_wave(wave_id=wave_id, force=force)
    if outcome == "computed":
        # New interviews: parse them for exports ahead of time, not when a researcher waits.
        services.schedule_export_cache_update(wave_id=wave_id)
    if outcome == "busy" and not recompute_wave_estimates.app.conf.task_always_eager:
        # Another run holds the wave. It re-checks for new interviews when it ends; if
        # its worker died, the claim goes stale and this retry takes over.
        recompute_wave_estimates.apply_async(
            args=[wave_id], countdown=services.stale_after() / 2 + 1
        )
    return outcome


@worker_ready.connect
def resume_after_restart(sender: object = None, **kwargs: object) -> None:
    """A worker that starts picks up waves left dirty or interrupted by a dead worker."""
    try:
        queued = services.resume_pending_computations()
    except Exception:  # never keep a worker from starting
        log.exception("could not resume pending computations")
        return
    if queued:
        log.info("queued recomputation of waves %s", queued)
