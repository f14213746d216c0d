"""Whether a task runs now, in this process, or is queued on the broker: decided here only.

Every enqueue of the platform goes through `run_or_queue` (or `after_commit`). In embedded
mode (no broker: ``task_always_eager``) the task runs in this process; otherwise it is
sent to the broker. Either way a failure never reaches the caller, whose data are already
saved: a task that fails in-process is recorded by the task itself (a wave's last error,
a job's reason), and a broker that cannot be reached (Redis down) is logged and reported
by the return value, so the caller can leave its work marked as pending. The periodic
sweeps (`CELERY_BEAT_SCHEDULE`) and every worker's start-up queue such work again.

Tasks are named, not imported: a task module imports the services it calls, and the
services call this module, so an import here would close a cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from django.db import OperationalError, transaction
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# A broker that cannot be reached: raised by publishing, never by the task's own work.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    BrokerOperationalError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
)
# Publishing retries briefly: a request waits about a second on a broker that is down,
# then its work is left pending for the sweep.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# Only errors that a later attempt can get past; anything else is a bug to report.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    RedisConnectionError,
    ConnectionError,
)


def _app():  # type: ignore[no-untyped-def]
    from config.celery import app

    return app


def in_process() -> bool:
    """Whether tasks run in this process (embedded mode) rather than on a worker."""
    return bool(_app().conf.task_always_eager)


def run_or_queue(
    task_name: str,
    *args: object,
    countdown: float = 0,
    on_broker_error: Callable[[], None] | None = None,
    broker_only: bool = False,
) -> bool:
    """Run the named task now in this process (embedded mode) or queue it on the broker.

    Returns whether it ran or was queued. Never raises for a broker that cannot be
    reached: ``on_broker_error`` is then called (to leave the work marked pending) and
    False returned. ``broker_only`` skips the call in embedded mode (a retry that, run at
    once in the same process, could only find the same state again).
    """
    app = _app()
    if app.conf.task_always_eager:
        if broker_only:
            return False
        try:
            _task(app, task_name).apply(args=list(args))
        except Exception:
            log.exception("running %s%s in-process failed", task_name, args)
        return True
    try:
        _task(app, task_name).apply_async(
            args=list(args), countdown=countdown or None, retry_policy=PUBLISH_RETRY
        )
    except BROKER_ERRORS:
        log.exception("could not queue %s%s: the broker is unreachable", task_name, args)
        if on_broker_error is not None:
            try:
                on_broker_error()
            except Exception:
                log.exception("recording that %s%s is pending failed", task_name, args)
        return False
    return True


def after_commit(
    task_name: str,
    *args: object,
    countdown: float = 0,
    on_broker_error: Callable[[], None] | None = None,
) -> None:
    """`run_or_queue` once the current transaction commits (at once outside of one)."""
    transaction.on_commit(
        partial(
            run_or_queue, task_name, *args, countdown=countdown, on_broker_error=on_broker_error
        )
    )


def _task(app, name: str):  # type: ignore[no-untyped-def]
    if name not in app.tasks:
        # Task modules (autodiscovered tasks.py files and CELERY_IMPORTS) load once.
        app.loader.import_default_modules()
    return app.tasks[name]
