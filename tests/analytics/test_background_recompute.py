"""Embedded mode's recomputation after the response: a web submission does not wait for
the wave's estimates, and a burst of submissions is one run on the background thread."""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from analytics import dispatch
from analytics.models import ResultSet, WaveComputation
from surveys.models import Submission
from tests.surveys.webform_fixtures import complete_answers, instrument_wave, public_link

pytestmark = [pytest.mark.background_recompute, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def link(settings, embedded_tasks):
    settings.RECOMPUTE_DELAY = 2.0  # the runs wait well past the requests of a test
    made = public_link(instrument_wave())
    assert dispatch.wait_for_background(60)  # the new wave's own first run
    return made


def post(client, link) -> None:
    body = {"instance_id": str(uuid.uuid4()), "language": "ru", "answers": complete_answers()}
    response = client.post(f"/s/{link.token}/", json.dumps(body), content_type="application/json")
    assert response.status_code in (200, 201), response.content


def test_a_submission_answers_before_its_recomputation_runs(client, link):
    post(client, link)
    assert Submission.objects.filter(wave=link.wave).count() == 1
    # The request has answered; the run waits on the background thread, not in it.
    assert not dispatch.RUNNER.idle
    assert not ResultSet.objects.filter(wave=link.wave, is_current=True, n_interviews=1).exists()
    assert dispatch.wait_for_background(60)
    assert ResultSet.objects.get(wave=link.wave, is_current=True).n_interviews == 1
    assert not WaveComputation.objects.get(wave=link.wave).dirty


def test_a_burst_of_submissions_is_one_run(client, link):
    before = ResultSet.objects.filter(wave=link.wave).count()
    for _ in range(5):
        post(client, link)
    assert dispatch.wait_for_background(60)
    assert ResultSet.objects.filter(wave=link.wave).count() == before + 1
    assert ResultSet.objects.get(wave=link.wave, is_current=True).n_interviews == 5


def test_the_recomputation_runs_on_another_thread(client, link, monkeypatch):
    from analytics import services

    threads: list[int] = []
    real = services.recompute_wave

    def recording(**kwargs):
        threads.append(threading.get_ident())
        return real(**kwargs)

    monkeypatch.setattr(services, "recompute_wave", recording)
    post(client, link)
    assert dispatch.wait_for_background(60)
    assert threads and threading.get_ident() not in threads


def test_in_the_request_when_the_background_is_switched_off(client, link, settings):
    settings.EMBEDDED_RECOMPUTE_IN_BACKGROUND = False
    post(client, link)
    assert dispatch.RUNNER.idle
    assert ResultSet.objects.get(wave=link.wave, is_current=True).n_interviews == 1
