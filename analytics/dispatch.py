"""Whether a task runs now, in this process, or is queued on the broker: decided here only.

Every enqueue of the platform goes through `run_or_queue` (or `after_commit`). In embedded
mode (no broker: ``task_always_eager``) the task runs in this process; otherwise it is
sent to the broker. A task asked for ``background=True`` (a wave's recomputation) runs in
embedded mode on this process's background thread instead (`BackgroundRunner`), after
the request that asked for it has answered: a submission takes the same time with or
without estimates. Waiting and repeated requests for the same task and arguments are one
run; the wave's dirty flag (`analytics.services`) then coalesces as on a worker.
``wait_for_background`` returns once that thread is idle (tests, the benchmarks, the demo
set-up). Setting EMBEDDED_RECOMPUTE_IN_BACKGROUND=False runs such tasks in the request. Either way a failure never reaches the caller, whose data are already
saved: a task that fails in-process is recorded by the task itself (a wave's last error,
a job's reason), and a broker that cannot be reached (Redis down) is logged and reported
by the return value, so the caller can leave its work marked as pending. The periodic
sweeps (`CELERY_BEAT_SCHEDULE`) and every worker's start-up queue such work again.

Tasks are named, not imported: a task module imports the services it calls, and the
services call this module, so an import here would close a cycle.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.db import OperationalError, connection, transaction
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
    background: bool = False,
) -> bool:
    """Run the named task now in this process (embedded mode) or queue it on the broker.

    Returns whether it ran or was queued. Never raises for a broker that cannot be
    reached: ``on_broker_error`` is then called (to leave the work marked pending) and
    False returned. ``broker_only`` skips the call in embedded mode (a retry that, run at
    once in the same process, could only find the same state again). ``background``
    hands it in embedded mode to the background thread, to run ``countdown`` seconds
    later, instead of running it in the caller.
    """
    app = _app()
    if app.conf.task_always_eager:
        if broker_only:
            return False
        if background and settings.EMBEDDED_RECOMPUTE_IN_BACKGROUND:
            RUNNER.submit(task_name, args, countdown)
            return True
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
    background: bool = False,
) -> None:
    """`run_or_queue` once the current transaction commits (at once outside of one)."""
    transaction.on_commit(
        partial(
            run_or_queue,
            task_name,
            *args,
            countdown=countdown,
            on_broker_error=on_broker_error,
            background=background,
        )
    )


def _task(app, name: str):  # type: ignore[no-untyped-def]
    if name not in app.tasks:
        # Task modules (autodiscovered tasks.py files and CELERY_IMPORTS) load once.
        app.loader.import_default_modules()
    return app.tasks[name]


# Seconds the background thread may hold the interpreter while a request waits for it.
SWITCH_INTERVAL = 0.0005


class BackgroundRunner:
    """Embedded mode's worker: one daemon thread of this process running the tasks handed
    to it, each when its countdown has passed, one at a time. A task already waiting with
    the same arguments is not added twice; one that is running may be added again (the
    run that follows sees what arrived meanwhile)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: dict[tuple[str, tuple[object, ...]], float] = {}
        self._running: tuple[str, tuple[object, ...]] | None = None
        self._thread: threading.Thread | None = None

    def submit(self, task_name: str, args: tuple[object, ...], countdown: float = 0) -> None:
        key = (task_name, tuple(args))
        with self._changed:
            if key not in self._due:
                self._due[key] = time.monotonic() + max(countdown, 0.0)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="tanys-background", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def _next(self) -> tuple[str, tuple[object, ...]]:
        with self._changed:
            while True:
                if self._due:
                    key, due = min(self._due.items(), key=lambda item: item[1])
                    wait = due - time.monotonic()
                    if wait <= 0:
                        del self._due[key]
                        self._running = key
                        return key
                else:
                    wait = None
                self._changed.wait(wait)

    def _loop(self) -> None:
        while True:
            task_name, args = self._next()
            # While the task runs, a request thread waiting on the database gets the
            # interpreter back within SWITCH_INTERVAL of its reply, not the default 5 ms
            # this busy thread would otherwise keep it: a request makes a few dozen waits.
            interval = sys.getswitchinterval()
            sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
            try:
                _task(_app(), task_name).apply(args=list(args))
            except Exception:
                log.exception("running %s%s in the background failed", task_name, args)
            finally:
                sys.setswitchinterval(interval)
                connection.close()  # this thread's own connection; the next run opens one
                with self._changed:
                    self._running = None
                    self._changed.notify_all()

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until nothing is waiting or running (countdowns included); returns False
        if that did not happen within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._due or self._running is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    @property
    def idle(self) -> bool:
        with self._changed:
            return not self._due and self._running is None


RUNNER = BackgroundRunner()
# A command (setup_demo, an import) or a dev server that ends first lets the runs it
# started finish, so no wave is left claimed by a run that died with the process.
atexit.register(lambda: RUNNER.idle or RUNNER.wait(float(settings.CELERY_TASK_TIME_LIMIT)))


def wait_for_background(timeout: float = 60.0) -> bool:
    """Wait until the embedded background thread has run everything handed to it (the
    estimates of every submission so far are then stored). True when it did in time."""
    return RUNNER.wait(timeout)
