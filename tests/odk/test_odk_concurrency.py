"""ODK Collect over a real server: identical POSTs at once, and chunked uploads (gunicorn)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from odk.services import create_odk_device
from surveys.models import Submission
from tests.collect.collect_fixtures import assignment_for, tablet_wave, user_in
from tests.conftest import need
from tests.odk.openrosa_client import fill

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def odk_field(transactional_db):
    wave = tablet_wave()
    enumerator = user_in("enumerator", "aigerim")
    assignment_for(enumerator, wave)
    device, token = create_odk_device(enumerator=enumerator, actor=enumerator)
    xform = Client().get(f"/odk/{token}/forms/{wave.form_version_id}/form.xml").content
    return f"/odk/{token}", xform


def multipart(xml: bytes, boundary: str = "tanysboundary") -> tuple[bytes, str]:
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="xml_submission_file"; filename="submission.xml"\r\n'
            "Content-Type: text/xml\r\n\r\n"
        ).encode()
        + xml
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_two_identical_posts_at_once_store_one_interview(odk_field):
    need(connection.vendor == "postgresql", "concurrent writes need PostgreSQL")
    base, xform = odk_field
    instance_id = uuid.uuid4()
    xml = fill(xform, {"q1": "1", "age": "44"}, instance_id=instance_id)
    body, content_type = multipart(xml)
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def send() -> None:
        client = Client()
        barrier.wait()
        response = client.generic("POST", f"{base}/submission", body, content_type=content_type)
        statuses.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [201] * 4
    assert Submission.objects.filter(instance_id=instance_id).count() == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_chunked_upload_through_gunicorn_is_stored(odk_field, settings, tmp_path):
    need(connection.vendor == "postgresql", "a second process shares the test database")
    base, xform = odk_field
    port = _free_port()
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{port}",
         "-w", "1", "--log-level", "warning"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        instance_id = uuid.uuid4()
        body, content_type = multipart(
            fill(xform, {"q1": "2", "age": "29"}, instance_id=instance_id)
        )
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.putrequest("POST", f"{base}/submission")
        conn.putheader("Content-Type", content_type)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.putheader("X-OpenRosa-Version", "1.0")
        conn.endheaders()
        for start in range(0, len(body), 700):
            chunk = body[start : start + 700]
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        assert response.status == 201, response.read()
        assert response.getheader("X-OpenRosa-Version") == "1.0"
        assert Submission.objects.filter(instance_id=instance_id).count() == 1
    finally:
        server.terminate()
        server.wait(10)
