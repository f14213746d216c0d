"""Shared test setup.

Tests that need a real service (PostgreSQL, Redis with a Celery worker, Chromium) skip when
it is absent on a developer's machine, and fail instead when TANYS_REQUIRE_SERVICES=1, as
CI sets: CI must never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import os
import shutil

import pytest

# Playwright's sync API runs an event loop in the test thread; Django must still allow ORM calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
REQUIRE_SERVICES = os.environ.get("TANYS_REQUIRE_SERVICES") == "1"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def need(condition: bool, reason: str) -> None:
    """Skip (developer machine) or fail (CI) when a real service is missing."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


TRANSACTIONAL = {"transactional_db", "live_server", "celery_worker_process"}


@pytest.fixture(autouse=True)
def _reference_data(request):
    """Regions and role groups, loaded by a data migration, as every test expects them.

    A transactional test ends by emptying every table (Django's flush), the migrated
    reference data included; the next test that uses the database reloads it.
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(TRANSACTIONAL & set(request.fixturenames)) or bool(
        marker and marker.kwargs.get("transaction")
    )
    if marker is None and not transactional and "db" not in request.fixturenames:
        return
    request.getfixturevalue("transactional_db" if transactional else "db")
    from django.contrib.auth.models import Group, Permission

    from surveys.models import Region
    from surveys.regions import load_regions
    from surveys.roles import ensure_roles

    if not Region.objects.exists():
        load_regions(Region)
        ensure_roles(Group, Permission)


@pytest.fixture(autouse=True)
def _recompute_in_request(request, settings):
    """Tests read a wave's estimates right after the submission that changed them, so in
    embedded mode they run in the request; tests marked ``background_recompute`` keep the
    background thread and wait for it (`analytics.dispatch.wait_for_background`)."""
    if request.node.get_closest_marker("background_recompute") is None:
        settings.EMBEDDED_RECOMPUTE_IN_BACKGROUND = False


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Uploaded forms, snapshots and exports of a test go to its own folder, not the repo's."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(scope="session")
def browser():
    need(
        os.path.exists(CHROMIUM) or shutil.which("chromium") is not None,
        "Chromium is not installed",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    tab = context.new_page()
    yield tab
    context.close()


class CeleryWorkerProcess:
    """`celery -A config worker --pool=solo` as a subprocess, on Redis and the pytest
    database, consuming a queue of its own so parallel test runs never share tasks."""

    def __init__(self, env: dict[str, str], queue: str, log_dir: str, name: str = "") -> None:
        self.env, self.queue, self.log_dir = env, queue, log_dir
        self.name = name or queue
        self.process = None
        self.starts = 0

    def start(self, timeout: float = 60.0) -> None:
        import subprocess
        import sys
        import time

        self.starts += 1
        self.log = f"{self.log_dir}/{self.name}-{self.starts}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
             "--loglevel=INFO", "-Q", self.queue, "-n", f"{self.name}-{self.starts}@%h",
             "--without-mingle", "--without-gossip", f"--logfile={self.log}"],
            env=self.env,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited early: {self.output()}")
            if " ready." in self.output():
                return
            time.sleep(0.1)
        raise RuntimeError(f"the worker did not become ready: {self.output()}")

    def output(self) -> str:
        try:
            with open(self.log, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """SIGKILL, as when a machine or container dies mid-task."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except Exception:
                self.process.kill()


def redis_broker() -> str:
    """The broker URL the tests use; skips (fails in CI) when Redis does not answer."""
    broker = (
        os.environ.get("CELERY_BROKER_URL")
        or os.environ.get("REDIS_URL")
        or "redis://127.0.0.1:6379/15"
    )
    try:
        import redis

        redis.Redis.from_url(broker, socket_connect_timeout=2).ping()
        reachable = True
    except Exception:
        reachable = False
    need(reachable, f"needs Redis at {broker}")
    return broker


@contextlib.contextmanager
def sending_to(broker: str, queue: str):
    """Tasks sent by this process go to ``queue`` on ``broker`` (not run in-process)."""
    from config.celery import app

    keys = ("broker_url", "task_always_eager", "task_default_queue")
    saved = {k: app.conf[k] for k in keys}

    def reset_pools() -> None:
        # New connections for the new broker (old ones are dropped, not closed: a closed
        # pool may still be referenced by a producer pool).
        app._pool = None
        app.amqp._producer_pool = None

    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    saved_env = os.environ.get("CELERY_BROKER_URL")
    os.environ["CELERY_BROKER_URL"] = broker
    app.conf.update(broker_url=broker, task_always_eager=False, task_default_queue=queue)
    reset_pools()
    try:
        yield app
    finally:
        if saved_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_env
        app.conf.update(saved)
        reset_pools()


@pytest.fixture
def embedded_tasks():
    """Tasks run in-process after commit, as in embedded mode, even when CI sets a broker."""
    from config.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


@pytest.fixture
def celery_worker_process(request, transactional_db, settings, tmp_path):
    """A real Celery worker against Redis and the (committed) pytest database.

    Needs PostgreSQL (DATABASE_URL) and Redis (CELERY_BROKER_URL, REDIS_URL or the local
    default): skips without them on a developer machine, fails in CI. Yields a
    `CeleryWorkerProcess`, already started; tasks sent by the test process go to its queue.
    Parametrised indirectly with a number (``indirect=True``), it starts that many worker
    processes on the one queue (prefetch 1, as deployed) and yields their list.
    """
    import uuid

    from django.db import connection

    need(connection.vendor == "postgresql", "needs PostgreSQL: set DATABASE_URL=postgres://...")
    broker = redis_broker()
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    database_url = (
        f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    queue = f"tanys-test-{uuid.uuid4().hex[:10]}"
    settings.MEDIA_ROOT = tmp_path / "media"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "TANYS_COMPUTATION_STALE_SECONDS": "3",
        "DB_CONN_MAX_AGE": "0",
    }
    settings.COMPUTATION_STALE_SECONDS = 3
    workers = [
        CeleryWorkerProcess(env, queue, str(tmp_path), name=f"{queue}-w{i}")
        for i in range(request.param if hasattr(request, "param") else 1)
    ]
    try:
        with sending_to(broker, queue):
            for worker in workers:
                worker.start()
            yield workers[0] if len(workers) == 1 else workers
    finally:
        for worker in workers:
            worker.stop()
        import redis

        with redis.Redis.from_url(broker) as client:
            client.delete(queue)
