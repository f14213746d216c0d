"""Uploading population margins: located errors, nothing stored on error, versioning."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from analytics.margins import MarginsError, parse_margins
from analytics.models import PopulationMargins, WaveComputation
from tests.factories import WaveFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


GOOD = (Path(__file__).parent / "reference" / "pipeline_margins.csv").read_bytes()


def test_a_valid_csv_gives_both_dimensions():
    wave = WaveFactory(geography="KZ2013")
    table = parse_margins(GOOD, "m.csv", wave=wave)
    assert {r["dimension"] for r in table} == {"region_urban", "sex_age"}
    assert len(table) == 40
    assert table[0] == {
        "dimension": "region_urban",
        "cell": {"region": "KZ-AKM", "urban_rural": 1},
        "total": 90323.0,
    }


def test_xlsx_is_read_like_csv():
    wave = WaveFactory(geography="KZ2013")
    book = openpyxl.Workbook()
    for line in GOOD.decode().splitlines():
        book.active.append(line.split(","))
    buffer = io.BytesIO()
    book.save(buffer)
    assert parse_margins(buffer.getvalue(), "m.xlsx", wave=wave) == parse_margins(
        GOOD, "m.csv", wave=wave
    )


def test_problems_are_reported_in_the_users_language():
    wave = WaveFactory(geography="KZ2013")
    bad = GOOD.replace(b",90323", b",-5")
    for language, expected in (
        ("kk", "2-жол, «total» бағаны: оң сан"),
        ("ru", "строка 2, столбец «total»: должно"),
    ):
        with translation.override(language):
            with pytest.raises(MarginsError) as caught:
                parse_margins(bad, "m.csv", wave=wave)
            assert str(caught.value.problems[0]).startswith(expected)


def test_problems_name_their_row_and_column():
    wave = WaveFactory(geography="KZ2022")  # the file uses 2013 codes
    bad = GOOD.replace(b"sex_age,,,2,60+", b"sex_age,,,3,60+").replace(b",90323", b",-5")
    with pytest.raises(MarginsError) as caught:
        parse_margins(bad, "m.csv", wave=wave)
    text = [str(p) for p in caught.value.problems]
    assert any(t.startswith("row 2, column “region”") and "KZ-AKM" in t for t in text)
    assert any(t.startswith("row 2, column “total”") for t in text)
    assert any("column “sex”" in t for t in text)


def test_missing_columns_and_unequal_totals_are_refused():
    wave = WaveFactory(geography="KZ2013")
    with pytest.raises(MarginsError, match="region"):
        parse_margins(b"dimension,total\nsex_age,5\n", "m.csv", wave=wave)
    unequal = GOOD.replace(b",90323", b",190323")
    with pytest.raises(MarginsError, match="grand totals differ"):
        parse_margins(unequal, "m.csv", wave=wave)
    with pytest.raises(MarginsError, match="duplicates the cell of row 2"):
        parse_margins(GOOD + b"region_urban,KZ-AKM,1,,,5\n", "m.csv", wave=wave)


def test_admin_upload_stores_the_next_version_or_nothing(
    client, django_capture_on_commit_callbacks
):
    wave = WaveFactory(geography="KZ2013")
    admin = get_user_model().objects.create_superuser("boss", "b@example.org", "pw-12345678")
    client.force_login(admin)
    url = reverse("admin:analytics_populationmargins_add")
    bad = GOOD.replace(b",90323", b",zero")
    response = client.post(
        url,
        {"wave": wave.pk, "source": "census", "file": SimpleUploadedFile("m.csv", bad)},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert "row 2, column “total”" in response.content.decode()
    assert not PopulationMargins.objects.exists()
    for expected in (1, 2):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = client.post(
                url,
                {"wave": wave.pk, "source": "census", "file": SimpleUploadedFile("m.csv", GOOD)},
            )
        assert response.status_code == 302
        assert PopulationMargins.objects.filter(wave=wave).latest("version").version == expected
        assert len(callbacks) == 1  # the wave is marked dirty once the upload commits
        callbacks[0]()
        assert WaveComputation.objects.get(wave=wave).dirty
