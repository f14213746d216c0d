"""One tablet interview per request over HTTP under gunicorn with 16 concurrent clients, as a ratio to a bare Django view inserting the same JSON into PostgreSQL.

gunicorn (sync workers, one per core, at least two) serves the platform with one extra
view, /bench/bare/, which parses the body and inserts it into a scratch table: the
least any Django view can do with an interview. 16 client threads then POST, each
request one instrument interview with a new instance id: first to
/api/collect/sync/ (device token, full validation, storage, paradata, recomputation
mark), then to the bare view, for the same time each, in the same run. Goals: at least
0.5 of the bare view's throughput, p99 under 100 ms. Recomputations are queued on a
queue no worker reads and dropped at the end, with every interview written.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

CLIENTS = 16
WORKERS = max(2, os.cpu_count() or 2)  # gunicorn sync workers: one per core, at least two
SECONDS = float(os.environ.get("BENCH_HTTP_SECONDS", "20"))
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def _stored(status: int, data: bytes) -> bool:
    return status == 200 and b'"stored"' in data


def _load(port: int, path: str, bodies, headers: dict[str, str], seconds: float, ok=_stored):
    """CLIENTS threads posting for ``seconds``; returns (requests/s, latencies in s, errors).
    ``ok(status, body)`` says whether a response was the success the client waits for."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        mine: list[float] = []
        while time.monotonic() < stop:
            body = bodies()
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                conn.close()
                succeeded = ok(response.status, data)
            except OSError:
                succeeded = False
            mine.append(time.perf_counter() - started)
            if not succeeded:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    return len(latencies) / elapsed, latencies, errors[0]


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def start_gunicorn():
    """gunicorn serving the platform (and the bare view) against the benchmark's database,
    over plain HTTP on loopback, its recomputations queued where no worker reads them.
    Returns (process, port, queue, broker URL)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    queue = f"tanys-bench-{uuid.uuid4().hex[:8]}"
    broker = os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/13"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.http_settings",
        "DATABASE_URL": f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "127.0.0.1",
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "LOG_LEVEL": "WARNING",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback; a proxy ends TLS in production
    }
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers", str(WORKERS),
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--chdir", str(ROOT)],
        env=env,
    )  # fmt: skip
    return server, port, queue, broker


def stop_and_clean(server, wave, queue: str, broker: str) -> None:  # type: ignore[no-untyped-def]
    """Stop gunicorn; remove the interviews, the scratch table and the unread queue."""
    import redis
    from django.db import connection

    from collect.models import TabletInterview
    from surveys.models import Submission

    server.terminate()
    server.wait(30)
    TabletInterview.objects.filter(submission__wave=wave).delete()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Submission._meta.db_table} WHERE wave_id = %s", [wave.pk])
        cursor.execute("DROP TABLE IF EXISTS bench_bare")
    redis.Redis.from_url(broker).delete(queue)


def run() -> list[str]:
    from django.db import connection

    from bench.bench_sync import fieldwork, interviews
    from collect.services import enrol_device

    wave, assignment, _ = fieldwork()
    _, token = enrol_device(enumerator=assignment.enumerator, via="password", label="bench-http")
    templates = interviews(200, assignment, seed=21)
    counter = iter(range(10**9))

    def body() -> str:
        item = dict(templates[next(counter) % len(templates)], instance_id=str(uuid.uuid4()))
        return json.dumps({"interviews": [item]})

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_bare (id bigserial PRIMARY KEY, body jsonb)"
        )
    server, port, queue, broker = start_gunicorn()
    lines = []
    try:
        _wait_up(port)
        tablet_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        bare_headers = {"Content-Type": "application/json"}
        _load(port, "/api/collect/sync/", body, tablet_headers, 2)  # warm-up
        _load(port, "/bench/bare/", body, bare_headers, 2)
        rate, lat, errors = _load(port, "/api/collect/sync/", body, tablet_headers, SECONDS)
        bare_rate, bare_lat, bare_errors = _load(port, "/bench/bare/", body, bare_headers, SECONDS)
        lines = [
            f"gunicorn, {WORKERS} sync workers, {CLIENTS} concurrent clients, {SECONDS:.0f} s each",
            f"tablet sync, one interview a request: {rate:,.0f} interviews/s, "
            f"p50 {_p(lat, 50) * 1000:.0f} ms, p99 {_p(lat, 99) * 1000:.0f} ms, errors {errors}",
            f"bare Django view inserting the same JSON: {bare_rate:,.0f} requests/s, "
            f"p50 {_p(bare_lat, 50) * 1000:.0f} ms, p99 {_p(bare_lat, 99) * 1000:.0f} ms, errors {bare_errors}",
            f"ratio {rate / bare_rate:.2f} of the bare view's throughput (goal >= 0.5), "
            f"p99 {_p(lat, 99) * 1000:.0f} ms (goal < 100 ms)",
        ]
    finally:
        stop_and_clean(server, wave, queue, broker)
    return lines
