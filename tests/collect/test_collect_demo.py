"""The demo sets up fieldwork: a supervisor, an enumerator, assignments in the open wave."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from collect.models import Assignment

pytestmark = pytest.mark.django_db


def test_setup_demo_prints_working_tablet_logins(embedded_tasks):
    out = io.StringIO()
    call_command("setup_demo", n_2013=40, n_current=40, stdout=out)
    text = out.getvalue()
    assert "http://127.0.0.1:8000/collect/" in text
    password = re.search(r"enumerator / (\S+)", text)[1]
    assert re.search(r"Supervisor: supervisor / (\S+)", text)
    assignments = Assignment.objects.filter(enumerator__username="enumerator")
    assert assignments.count() == 2
    assert {a.wave.code for a in assignments} == {"2026"}
    enrolled = APIClient().post(
        "/api/collect/devices/", {"username": "enumerator", "password": password}, format="json"
    )
    assert enrolled.status_code == 201
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {enrolled.json()['token']}")
    rows = client.get("/api/collect/assignments/").json()
    assert [r["quota"] for r in rows] and all(r["prefilled"]["REGION"] for r in rows)
    # Running setup again keeps the assignments (new passwords only).
    call_command("setup_demo", n_2013=40, n_current=40, stdout=io.StringIO())
    assert assignments.count() == 2
