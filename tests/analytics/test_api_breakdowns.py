"""The breakdown estimates endpoint: filters, labels, permissions and query count."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.analytics.factories_estimates import (
    breakdown_estimates,
    make_user,
    regional_estimates,
)
from tests.factories import WaveFactory

pytestmark = pytest.mark.django_db
URL = "/api/breakdown-estimates/"


@pytest.fixture
def researcher():
    return make_user("researcher", "researcher")


@pytest.fixture
def wave():
    wave = WaveFactory(code="2026", geography="KZ2022")
    regional_estimates(wave)
    breakdown_estimates(wave, breakdown="sex", suppressed_groups=("female",))
    breakdown_estimates(wave, breakdown="age_band", regions=0)
    return wave


def client(user=None) -> APIClient:
    api = APIClient()
    if user is not None:
        api.force_authenticate(user)
    return api


def test_needs_the_estimates_permission(wave, researcher):
    assert client().get(URL).status_code == 401
    assert client(make_user("bare")).get(URL).status_code == 403
    assert client(researcher).get(URL).status_code == 200


def test_breakdown_filter_and_national_groups(wave, researcher):
    api = client(researcher)
    assert api.get(URL).json()["count"] == 3 * 2 + 4
    sex = api.get(f"{URL}?breakdown=sex&region=KZ").json()
    assert [(r["group"], r["region"]) for r in sex["results"]] == [
        ("female", None),
        ("male", None),
    ]
    female = sex["results"][0]
    assert female["suppressed"] is True and female["estimate"] is None
    assert female["suppression_reason"] == "n<30" and female["n_numerator"] is None
    assert female["breakdown"] == "sex" and female["wave"] == "2026"
    ages = api.get(f"{URL}?breakdown=age_band&group=60%2B").json()
    assert ages["count"] == 1 and ages["results"][0]["estimate"] == pytest.approx(0.65)
    assert api.get(f"{URL}?breakdown=height").status_code == 400


def test_group_labels_follow_the_language(wave, researcher):
    api = client(researcher)
    url = f"{URL}?breakdown=sex&region=KZ&group=male"
    assert api.get(url, HTTP_ACCEPT_LANGUAGE="en").json()["results"][0]["group_label"] == "Men"
    assert api.get(url, HTTP_ACCEPT_LANGUAGE="ru").json()["results"][0]["group_label"] == "Мужчины"
    assert api.get(url, HTTP_ACCEPT_LANGUAGE="kk").json()["results"][0]["group_label"] == "Ерлер"


def test_a_fixed_number_of_queries(wave, researcher):
    def queries() -> int:
        fresh = get_user_model().objects.get(pk=researcher.pk)  # no cached permissions
        with CaptureQueriesContext(connection) as context:
            assert client(fresh).get(URL).status_code == 200
        return len(context.captured_queries)

    few = queries()
    other = WaveFactory(
        code="2027", geography="KZ2022", survey=wave.survey, form_version=wave.form_version
    )
    regional_estimates(other)
    breakdown_estimates(other, breakdown="employment", regions=3)
    assert queries() == few


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_download_the_breakdown_table(wave, researcher, file_format):
    from analytics.exports.breakdowns import BREAKDOWN_COLUMNS
    from audit.models import AuditEvent

    response = client(researcher).get(f"{URL}download/?breakdown=sex&file_format={file_format}")
    assert response.status_code == 200
    from django.utils import timezone

    from surveys.attachments import name_part

    survey, day = name_part(wave.survey.code), timezone.localdate()
    name = f"tanys_{survey}_{wave.code}_breakdowns_{day:%Y-%m-%d}"
    assert f'filename="{name}.{file_format}"' in response["Content-Disposition"]
    content = b"".join(response) if hasattr(response, "streaming_content") else response.content
    if file_format == "csv":
        table = pd.read_csv(io.BytesIO(content), encoding="utf-8-sig", keep_default_na=False)
    else:
        table = pd.read_excel(io.BytesIO(content), sheet_name="breakdowns", keep_default_na=False)
    assert list(table.columns) == [name for name, _definition in BREAKDOWN_COLUMNS]
    assert len(table) == 3 * 2 and set(table["breakdown"]) == {"sex"}
    female = table[(table["group"] == "female") & (table["region_code"] == "KZ")].iloc[0]
    assert female["group_label_ru"] == "Женщины" and female["group_label_kk"] == "Әйелдер"
    assert female["estimate"] == "" and female["reliable"] == 0 and female["n"] == 12
    male = table[(table["group"] == "male") & (table["region_code"] == "KZ")].iloc[0]
    assert float(male["estimate"]) == pytest.approx(0.5)
    assert AuditEvent.objects.filter(detail__kind="breakdowns").count() == 1


def test_download_needs_a_known_format(wave, researcher):
    response = client(researcher).get(f"{URL}download/?file_format=pdf")
    assert response.status_code == 400 and "file_format" in response.json()
