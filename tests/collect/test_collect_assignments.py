"""Assignments from a CSV upload: all rows or none, problems named by row."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from collect.models import Assignment
from collect.services import enrol_device
from tests.collect.collect_fixtures import tablet_wave, user_in

ALL_REGIONS = ("KZ-75", "KZ-11")

pytestmark = pytest.mark.django_db

HEADER = "enumerator,survey,wave,region,settlement,psu,quota,prefill.URBAN\n"


def upload(client: APIClient, text: str, language: str = "en"):
    return client.post(
        "/api/collect/assignments/upload/",
        {"file": SimpleUploadedFile("a.csv", text.encode("utf-8-sig"), "text/csv")},
        HTTP_ACCEPT_LANGUAGE=language,
    )


@pytest.fixture
def supervisor_client():
    survey = tablet_wave().survey
    user_in("enumerator", "aigerim", survey=survey)
    user_in("enumerator", "bolat", survey=survey)
    client = APIClient()
    client.force_authenticate(user_in("supervisor", "saule", survey=survey, regions=ALL_REGIONS))
    return client


def test_a_valid_file_creates_every_assignment(supervisor_client):
    response = upload(
        supervisor_client,
        HEADER
        + "aigerim,tablet,T1,KZ-75,Алматы,PSU-1,20,1\n"
        + "bolat,tablet,T1,KZ-11,Көкшетау,PSU-2,,2\n",
    )
    assert response.status_code == 201, response.content
    assert response.json() == {"created": 2}
    first, second = Assignment.objects.order_by("pk")
    assert (first.enumerator.username, first.quota, first.prefilled) == (
        "aigerim",
        20,
        {"URBAN": 1},
    )
    assert (second.region.code, second.quota, second.settlement) == ("KZ-11", -1, "Көкшетау")
    assert AuditEvent.objects.filter(action=AuditAction.ASSIGNMENTS_CHANGED).count() == 1


def test_a_file_with_errors_writes_nothing_and_names_each_row(supervisor_client):
    response = upload(
        supervisor_client,
        HEADER
        + "aigerim,tablet,T1,KZ-75,Алматы,PSU-1,20,1\n"
        + "nobody,tablet,T1,KZ-75,,,5,1\n"
        + "bolat,tablet,T9,KZ-75,,,5,1\n"
        + "bolat,tablet,T1,KZ-XX,,,many,1\n",
        language="ru",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors[0] == "Строка 3: Пользователь nobody не найден."
    assert errors[1].startswith("Строка 4: ")
    assert [e.split(":")[0] for e in errors[2:]] == ["Строка 5", "Строка 5"]
    assert not Assignment.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.ASSIGNMENTS_CHANGED).exists()


def test_missing_columns_are_named(supervisor_client):
    response = upload(supervisor_client, "enumerator,wave\naigerim,T1\n")
    assert response.status_code == 400
    assert response.json()["errors"] == ["Columns missing from the file: survey, region."]


def test_enumerators_cannot_upload():
    client = APIClient()
    client.force_authenticate(user_in("enumerator", "aigerim"))
    assert upload(client, HEADER).status_code == 403


def test_settlement_coordinates_come_from_the_file_and_reach_the_tablet(supervisor_client):
    response = upload(
        supervisor_client,
        "enumerator,survey,wave,region,settlement,latitude,longitude\n"
        "aigerim,tablet,T1,KZ-75,Алматы,43.2389,76.8897\n"
        "bolat,tablet,T1,KZ-11,Көкшетау,,\n",
    )
    assert response.status_code == 201, response.content
    first, second = Assignment.objects.order_by("pk")
    assert first.coordinates == (43.2389, 76.8897)
    assert second.coordinates is None
    device_client = APIClient()
    _, token = enrol_device(enumerator=first.enumerator, via="password")
    device_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    (row,) = device_client.get("/api/collect/assignments/").json()
    assert (row["latitude"], row["longitude"], row["settlement"]) == (43.2389, 76.8897, "Алматы")


def test_coordinates_out_of_range_or_half_given_refuse_the_file(supervisor_client):
    response = upload(
        supervisor_client,
        "enumerator,survey,wave,region,latitude,longitude\n"
        "aigerim,tablet,T1,KZ-75,43.2,\n"
        "bolat,tablet,T1,KZ-11,95,76.9\n"
        "bolat,tablet,T1,KZ-11,north,76.9\n",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        "Row 2: Give both the latitude and the longitude of the settlement, or neither.",
        "Row 3: The latitude must be a number from -90 to 90 (decimal degrees).",
        "Row 4: The latitude and longitude must be decimal degrees.",
    ]
    assert not Assignment.objects.exists()
