"""Faults with real processes: Redis stopped under submissions, a worker killed mid-export.

Each test starts what it breaks (a private redis-server on a free loopback port, Celery
workers on it or on a queue of their own) and is bounded in time.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import redis
from django.db import connection

from analytics import dispatch, services
from analytics.exports.jobs import create_export_job
from analytics.models import ExportJob, ResultSet, WaveComputation
from analytics.tasks import resume_pending_work
from surveys.demo import RATES_CURRENT, generate_wave
from surveys.models import Submission
from tests.analytics.factories_estimates import grant_everywhere, make_user
from tests.conftest import CeleryWorkerProcess, need, redis_broker, sending_to
from tests.factories import WaveFactory
from tests.surveys.webform_fixtures import complete_answers, instrument_wave, public_link

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def wait_for(condition, *, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own, on a loopback port, without persistence."""

    def __init__(self, port: int) -> None:
        self.port, self.process = port, None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_for(answers, timeout=10, what="redis-server to answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def private_redis():
    need(shutil.which("redis-server") is not None, "needs redis-server")
    server = PrivateRedis(free_port())
    server.start()
    yield server
    server.stop()


def worker_env(settings, broker: str, queue: str, **extra: str) -> dict[str, str]:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DB_CONN_MAX_AGE": "0",
        **extra,
    }


def researcher():
    return make_user("researcher-faults", "researcher")


def test_redis_down_loses_no_submission_and_estimates_catch_up_when_it_returns(
    private_redis, settings, tmp_path, client
):
    need(connection.vendor == "postgresql", "needs PostgreSQL: set DATABASE_URL=postgres://...")
    began = time.monotonic()
    settings.EXPORT_DIRECT_MAX_ROWS = 0  # the export below becomes a job
    queue = f"tanys-faults-{uuid.uuid4().hex[:10]}"
    user = researcher()
    worker = CeleryWorkerProcess(
        worker_env(settings, private_redis.url, queue), queue, str(tmp_path)
    )
    try:
        with sending_to(private_redis.url, queue):
            wave = instrument_wave()
            grant_everywhere(user)  # the researcher's grant covers the instrument's survey
            link = public_link(wave)
            services.recompute_wave(wave_id=wave.pk)  # up to date before the outage
            assert not WaveComputation.objects.get(wave=wave).dirty
            private_redis.stop()
            # The web form's script posts JSON; without JavaScript the form posts fields.
            scripted = client.post(
                f"/s/{link.token}/",
                json.dumps(
                    {
                        "instance_id": str(uuid.uuid4()),
                        "language": "kk",
                        "answers": complete_answers(),
                    }
                ),
                content_type="application/json",
            )
            assert scripted.status_code == 200, scripted.content
            plain = client.post(
                f"/s/{link.token}/",
                {"_language": "en", "_instance_id": str(uuid.uuid4()), **complete_answers()},
            )
            assert plain.status_code == 302, plain.content
            client.force_login(user)
            created = client.post(
                "/api/export-jobs/",
                {"kind": "microdata", "file_format": "csv", "waves": [wave.pk]},
                content_type="application/json",
            )
            assert created.status_code == 201, created.content
            assert created.json()["status"] == "queued"
            assert Submission.objects.filter(wave=wave).count() == 2
            pending = WaveComputation.objects.get(wave=wave)
            # The work is kept: dirty, and not scheduled, so a sweep queues it again.
            assert pending.dirty and pending.scheduled_at is None
            assert ResultSet.objects.get(wave=wave, is_current=True).n_interviews == 0

            # Redis returns; a worker starts. Nobody submits anything more.
            private_redis.start()
            worker.start()
            current = wait_for(
                lambda: ResultSet.objects.filter(
                    wave=wave, is_current=True, n_interviews=2
                ).first(),
                timeout=40,
                what="the estimates to include both interviews",
            )
            assert current.n_interviews == 2
            job = wait_for(
                lambda: ExportJob.objects.filter(pk=created.json()["id"], status="done").first(),
                timeout=20,
                what="the export queued while Redis was down",
            )
            frame = pd.read_csv(io.BytesIO(job.file.read()), encoding="utf-8-sig")
            assert len(frame) == 2
    finally:
        worker.stop()
    assert time.monotonic() - began < 60


def test_the_periodic_sweep_queues_work_whose_message_never_reached_the_broker(settings):
    """Counted on Redis itself: no worker consumes these queues."""
    broker = redis_broker()
    wave = WaveFactory()
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    with sending_to(unreachable, "nowhere"):
        assert dispatch.run_or_queue(services.RECOMPUTE, wave.pk) is False
        services.mark_wave_dirty(wave_id=wave.pk)  # after commit: no error, work kept
    lost = WaveComputation.objects.get(wave=wave)
    assert lost.dirty and lost.scheduled_at is None

    queue = f"tanys-sweep-{time.time_ns()}"
    client = redis.Redis.from_url(broker)
    try:
        with sending_to(broker, queue):
            assert resume_pending_work()["waves"] == [wave.pk]
            assert client.llen(queue) == 1
            # Queued now: the next sweep leaves it alone rather than queue it twice.
            assert resume_pending_work()["waves"] == []
            assert client.llen(queue) == 1
            # A run that failed is left to the next interview, not retried every sweep.
            WaveComputation.objects.filter(wave=wave).update(scheduled_at=None, stage="failed")
            assert resume_pending_work()["waves"] == []
    finally:
        client.delete(queue)
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "analytics.tasks.resume_pending_work" in schedule
    assert all(entry["schedule"] <= 60 for entry in settings.CELERY_BEAT_SCHEDULE.values()
               if entry["task"] == "analytics.tasks.resume_pending_work")  # fmt: skip


def test_a_worker_killed_mid_export_is_taken_over_and_its_file_is_whole(settings, tmp_path):
    need(connection.vendor == "postgresql", "needs PostgreSQL: set DATABASE_URL=postgres://...")
    broker = redis_broker()
    began = time.monotonic()
    limit = 10
    settings.EXPORT_TIME_LIMIT = limit
    wave = WaveFactory(geography="KZ2022")
    generate_wave(wave=wave, form_version=wave.form_version, n=20_000, seed=5, rates=RATES_CURRENT)
    queue = f"tanys-export-kill-{uuid.uuid4().hex[:10]}"
    env = worker_env(settings, broker, queue, TANYS_EXPORT_TIME_LIMIT=str(limit))
    worker = CeleryWorkerProcess(env, queue, str(tmp_path))
    user = researcher()
    try:
        with sending_to(broker, queue):
            worker.start()
            job = create_export_job(
                user=user, kind="microdata", file_format="csv", parameters={"waves": [wave.pk]}
            )
            # Under way: claimed, and its interviews being prepared or written.
            under_way = ExportJob.objects.filter(pk=job.pk, status="running").exclude(stage="")
            wait_for(under_way.exists, timeout=30, every=0.002, what="the export to be under way")
            worker.kill()
            killed = ExportJob.objects.get(pk=job.pk)
            assert killed.status == "running" and killed.file == ""
            # Once it is stale (EXPORT_TIME_LIMIT), the next worker takes it over at start.
            time.sleep(max(0.0, (killed.started_at.timestamp() + limit + 0.5) - time.time()))
            worker.start()
            done = wait_for(
                lambda: ExportJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).first(),
                timeout=40,
                what="the export to be taken over and finished",
            )
            assert done.status == "done", (done.error, worker.output()[-2000:])
            assert done.started_at > killed.started_at
    finally:
        worker.stop()
        with redis.Redis.from_url(broker) as client:
            client.delete(queue)
    path = Path(done.file.path)
    frame = pd.read_csv(path, encoding="utf-8-sig", low_memory=False)
    expected = {
        str(i) for i in Submission.objects.filter(wave=wave).values_list("instance_id", flat=True)
    }
    assert len(frame) == done.rows_done == 20_000
    assert set(frame["interview_id"]) == expected  # every interview once: a whole file
    assert not list(path.parent.glob(".*.part"))  # no partial file left beside it
    assert time.monotonic() - began < 75
