"""Input that no handler expected gets a 400 with a message, never a 500.

Deeply nested JSON, integers beyond 64 bits, NUL characters and year-1 timestamps, posted to
the respondent form and to the API. The suite runs this on SQLite and, with DATABASE_URL, on
PostgreSQL: the two fail differently without the checks (OverflowError on SQLite, a refused
string literal on PostgreSQL).
"""

from __future__ import annotations

import json
import uuid

import pytest
from rest_framework.test import APIClient

from surveys.models import Submission
from tests.analytics.factories_estimates import make_user
from tests.surveys.webform_fixtures import complete_answers, instrument_wave, public_link

pytestmark = pytest.mark.django_db

HUGE = 2**70
DEEP = 50_000


@pytest.fixture
def link():
    return public_link(instrument_wave())


@pytest.fixture
def api():
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(make_user("researcher", "researcher"))
    return client


def post_form(client, link, body: str | bytes):
    return client.post(f"/s/{link.token}/", body, content_type="application/json")


def payload(**changes):
    body = {"instance_id": str(uuid.uuid4()), "language": "ru", "answers": complete_answers()}
    body.update(changes)
    return body


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# ----------------------------------------------------------------- deeply nested JSON


def test_deeply_nested_json_to_the_form_is_a_400(client, link):
    client.raise_request_exception = False
    response = post_form(client, link, '{"answers": ' + nested(DEEP) + "}")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert response.json()["message"] == "Жауаптарды оқу мүмкін болмады."
    assert not Submission.objects.exists()


def test_nesting_that_decodes_but_is_too_deep_is_refused(client, link):
    # 500 levels decode in Python, then overflow whatever walks the answers next.
    answers = complete_answers(CITY=json.loads(nested(500)))
    response = post_form(client, link, json.dumps(payload(answers=answers)))
    assert response.status_code == 400
    assert not Submission.objects.exists()


def test_deeply_nested_json_to_a_closed_link_is_answered_too(client):
    closed = public_link(instrument_wave(code="closed", is_open=False))
    client.raise_request_exception = False
    response = post_form(client, closed, nested(DEEP))
    assert response.status_code == 410


def test_deeply_nested_json_to_the_api_is_a_400(api):
    response = api.post(
        "/api/export-jobs/",
        nested(DEEP),
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "Вложенность JSON превышает 64 уровней."


def test_deeply_nested_json_to_the_token_endpoint_is_a_400(client):
    client.raise_request_exception = False
    response = client.post("/api/token/", nested(DEEP), content_type="application/json")
    assert response.status_code == 400
    body = {"username": "nobody", "password": "wrong-horse"}
    response = client.post("/api/token/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400 and "token" not in response.json()


def test_the_api_parser_reads_ordinary_json(api):
    body = {"kind": "regional", "file_format": "csv", "waves": [HUGE]}
    response = api.post("/api/export-jobs/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert "waves" in response.json()


# ----------------------------------------------------------------- integers beyond 64 bits


@pytest.mark.parametrize(
    "url",
    [
        f"/api/estimates/?wave={HUGE}",
        f"/api/comparison/?wave={HUGE}",
        f"/api/comparison/download/?wave={HUGE}&file_format=csv",
        f"/api/estimates/?wave=-{HUGE}",
    ],
)
def test_huge_integers_in_filters_are_a_400(api, url):
    response = api.get(url)
    assert response.status_code == 400, response.content[:300]
    assert "wave" in response.json()


@pytest.mark.parametrize(
    "url",
    [
        f"/api/waves/{HUGE}/",
        f"/api/surveys/{HUGE}/",
        f"/api/regions/{HUGE}/",
        f"/api/estimates/{HUGE}/",
        f"/api/form-versions/{HUGE}/",
        f"/api/export-jobs/{HUGE}/",
    ],
)
def test_huge_ids_in_paths_are_not_found(api, url):
    assert api.get(url).status_code == 404


@pytest.mark.parametrize("waves", [[HUGE], [-HUGE], [2**63]])
def test_huge_integers_in_export_job_bodies_are_a_400(api, waves):
    response = api.post(
        "/api/export-jobs/", {"kind": "microdata", "file_format": "csv", "waves": waves}, "json"
    )
    assert response.status_code == 400, response.content[:300]
    assert "waves" in response.json()


# ----------------------------------------------------------------- NUL characters


def test_nul_in_a_text_answer_is_a_400_in_the_respondents_language(client, link):
    answers = complete_answers(HH_SIZE="3\x00")
    answers = {**answers, "CITY_NAME": "Ал\x00маты"}
    response = post_form(client, link, json.dumps(payload(answers=answers)))
    assert response.status_code == 400
    assert response.json()["code"] == "nul_character"
    assert response.json()["message"] == (
        "Ответы содержат символ NUL, который невозможно сохранить."
    )
    assert not Submission.objects.exists()


def test_nul_in_an_answer_key_is_refused(client, link):
    answers = {**complete_answers(), "X\x00": "1"}
    response = post_form(client, link, json.dumps(payload(answers=answers)))
    assert response.status_code == 400
    assert response.json()["code"] == "nul_character"


def test_nul_in_the_plain_html_form_is_a_400(client, link):
    data = {**complete_answers(), "BIRTH_YEAR": "19\x0085", "_language": "en"}
    data.update({"_instance_id": str(uuid.uuid4())})
    response = client.post(f"/s/{link.token}/", data)
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()
    assert not Submission.objects.exists()


def test_nul_in_a_filter_is_a_400(api):
    assert api.get("/api/surveys/?code=a%00b").status_code == 400
    assert api.get("/api/estimates/?region=a%00b").status_code == 400


# ----------------------------------------------------------------- implausible times


@pytest.mark.parametrize(
    "times",
    [
        {"started_at": "0001-01-01T00:00:00Z"},
        {"started_at": "0001-01-01T00:00:00+05:00"},
        {"started_at": "1999-12-31T23:00:00Z", "ended_at": "2026-01-01T00:00:00Z"},
        {"ended_at": "0001-01-01T00:00:00Z"},
    ],
)
def test_implausible_times_are_a_400_with_a_message(client, link, times):
    response = post_form(client, link, json.dumps(payload(**times)))
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "timestamp"
    assert "2000-01-01" in response.json()["message"]
    assert not Submission.objects.exists()


def test_plausible_times_are_stored_with_their_duration(client, link):
    times = {"started_at": "2026-03-01T10:00:00Z", "ended_at": "2026-03-01T10:20:00Z"}
    response = post_form(client, link, json.dumps(payload(**times)))
    assert response.status_code == 200, response.content
    assert Submission.objects.get().duration_seconds == 1200


def test_the_service_refuses_a_start_before_2000():
    import datetime as dt

    from surveys.services import SubmissionRefused, submit_interview

    wave = instrument_wave()
    with pytest.raises(SubmissionRefused) as caught:
        submit_interview(
            wave=wave,
            answers=complete_answers(),
            channel="tablet",
            language="kk",
            instance_id=uuid.uuid4(),
            started_at=dt.datetime(1, 1, 1, tzinfo=dt.UTC),
            ended_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
    assert caught.value.code == "timestamp"
    assert "2000-01-01" in caught.value.message  # Kazakh, the interview's language
    assert not Submission.objects.exists()
