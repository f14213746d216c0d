"""Fault: PostgreSQL unreachable while concurrent clients submit interviews.

The platform runs as a real gunicorn process whose database connections go through a small
TCP proxy started by the test; stopping the proxy cuts every connection and refuses new ones,
as a PostgreSQL restart does. Clients retry with the same instance ids until acknowledged.
Every acknowledged interview must be stored exactly once, every refused request must be a 503
with Retry-After (JSON for the form's script and the API, a page otherwise), none a 500.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.db import connection

from surveys.models import Submission
from tests.conftest import need
from tests.surveys.webform_fixtures import complete_answers, instrument_wave, public_link

CLIENTS = 6
INTERVIEWS_EACH = 8
DEADLINE = 45.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Proxy:
    """Forwards 127.0.0.1:port to the database; ``stop`` cuts and refuses every connection."""

    def __init__(self, target: tuple[str, int], port: int):
        self.target, self.port = target, port
        self.listener: socket.socket | None = None
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self.lock:
            listener, self.listener = self.listener, None
            doomed, self.sockets = self.sockets, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self.sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def request(url: str, *, data: bytes | None = None, headers: dict | None = None):
    """(status, headers, body) of one request; status 0 when the server did not answer."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, {}, b""


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "gunicorn exited"
        if request(url)[0] == 200:
            return
        time.sleep(0.2)
    raise AssertionError("gunicorn did not answer")


@pytest.fixture
def platform(transactional_db, tmp_path):
    """The platform in gunicorn, its database behind a proxy: (base url, proxy, link, log)."""
    need(connection.vendor == "postgresql", "PostgreSQL is not configured (DATABASE_URL)")
    link = public_link(instrument_wave())
    settings_dict = connection.settings_dict
    proxy = Proxy(
        (settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"] or 5432)), free_port()
    )
    proxy.start()
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{settings_dict['USER']}@127.0.0.1:{proxy.port}/{settings_dict['NAME']}",
        "DEBUG": "1",
        "CELERY_BROKER_URL": "memory://",
        "REDIS_URL": "",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "LOG_LEVEL": "WARNING",
        # Many quick submissions through one link from one address: the rate limit (tested
        # on its own) would answer some with 429; this test is about the database.
        "TANYS_RATE_LIMIT": "0",
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with log.open("wb") as output:
        server = subprocess.Popen(
            [
                str(gunicorn),
                "config.wsgi:application",
                f"--bind=127.0.0.1:{port}",
                "--workers=2",
                "--worker-class=gthread",
                "--threads=4",
                "--timeout=30",
                "--graceful-timeout=2",
            ],
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/s/{link.token}/", server)
        yield base, proxy, link, log
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        proxy.stop()


def test_database_outage_answers_503_and_loses_or_duplicates_nothing(platform):
    base, proxy, link, log = platform
    url = f"{base}/s/{link.token}/"
    started = time.monotonic()
    interviews = [
        [
            (str(uuid.uuid4()), complete_answers(HH_SIZE=str(1 + (c + i) % 9)))
            for i in range(INTERVIEWS_EACH)
        ]
        for c in range(CLIENTS)
    ]
    acknowledged: list[str] = []
    refusals: list[tuple[int, dict, bytes]] = []
    attempts = [0]
    lock = threading.Lock()

    def client(batch: list[tuple[str, dict]]) -> None:
        for instance_id, answers in batch:
            body = json.dumps({"instance_id": instance_id, "language": "ru", "answers": answers})
            while time.monotonic() - started < DEADLINE:
                status, headers, content = request(
                    url, data=body.encode(), headers={"Content-Type": "application/json"}
                )
                with lock:
                    attempts[0] += 1
                if status == 200 and json.loads(content)["code"] == "stored":
                    with lock:
                        acknowledged.append(instance_id)
                    break
                with lock:
                    refusals.append((status, headers, content))
                time.sleep(0.2)  # a real client waits Retry-After; the test keeps it short
            time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(batch,)) for batch in interviews]
    for thread in threads:
        thread.start()
    probes: list[tuple[str, tuple[int, dict, bytes]]] = []
    for outage in (2.5, 2.0):
        time.sleep(1.0)
        proxy.stop()
        time.sleep(0.3)
        probes.append(("page", request(url, headers={"Accept-Language": "ru"})))
        probes.append(
            ("api", request(f"{base}/api/surveys/", headers={"Authorization": "Token " + "0" * 40}))
        )
        time.sleep(outage)
        proxy.start()
    for thread in threads:
        thread.join(timeout=DEADLINE)
    elapsed = time.monotonic() - started

    all_ids = [instance_id for batch in interviews for instance_id, _ in batch]
    assert sorted(acknowledged) == sorted(all_ids), "some interviews were never acknowledged"
    stored = list(Submission.objects.values_list("instance_id", flat=True))
    assert len(stored) == len(all_ids)  # none duplicated
    assert sorted(str(i) for i in stored) == sorted(all_ids)  # none lost

    statuses = sorted({status for status, _h, _c in refusals})
    assert refusals, "the outage refused no request: the fault was not injected"
    assert statuses == [503], f"refused with {statuses}, not only 503"
    for _status, headers, content in refusals:
        assert headers.get("Retry-After", "").isdigit()
        answer = json.loads(content)
        assert answer["code"] == "unavailable"
        assert answer["message"] == "Сервис временно недоступен. Повторите попытку через минуту."

    page = dict(probes)["page"]
    assert page[0] == 503 and page[1]["Retry-After"].isdigit()
    assert page[1]["Content-Type"].startswith("text/html")
    html = page[2].decode()
    assert '<html lang="ru">' in html and "Сервис временно недоступен." in html
    assert "Қызмет уақытша қолжетімсіз." in html and "Traceback" not in html
    api = dict(probes)["api"]
    assert api[0] == 503 and api[1]["Retry-After"].isdigit()
    assert json.loads(api[2])["code"] == "unavailable"

    output = log.read_text()
    assert "Traceback" not in output
    assert "database unavailable, answered 503" in output
    assert elapsed < 60
    print(
        f"\n{len(all_ids)} interviews from {CLIENTS} clients, {attempts[0]} requests, "
        f"{len(refusals)} answered 503 during 2 outages; lost 0, duplicated 0, {elapsed:.1f} s"
    )
