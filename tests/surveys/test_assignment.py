"""Balanced assignment on the web form: the server's permuted blocks per wave and row,
drawn when the page is first rendered, kept through reloads, stored with the interview."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import Counter

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from surveys.assignment import BLOCK_SIZE, draw_balanced, permuted_block
from surveys.models import BalancedDraw, BalancedSequence, Submission
from surveys.services import import_xlsform, open_wave
from tests.conftest import need
from tests.factories import build_xlsform
from tests.surveys.test_webform_designs import CHOICES, SURVEY
from tests.surveys.webform_fixtures import public_link

SETTINGS = [["form_id", "version", "default_language"], ["le", "1", "English (en)"]]


def _wave(rows=SURVEY, code="le"):
    version, _ = import_xlsform(
        survey_code=code, content=build_xlsform(rows, CHOICES, SETTINGS), filename="le.xlsx"
    )
    return open_wave(survey=version.survey, code="L1", geography="KZ2022", form_version=version)


def _page(client: Client, url: str) -> tuple[str, dict]:
    """The page's interview id and the draws its form.js configuration carries."""
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    instance = re.search(r'name="_instance_id" value="([^"]+)"', html)
    config = re.search(r'<script id="tanys-config" type="application/json">(.*?)</script>', html)
    assert instance is not None and config is not None
    return instance.group(1), json.loads(config.group(1))["draws"]


def test_a_block_holds_each_half_equally_often_in_random_order():
    orders = {tuple(permuted_block()) for _ in range(300)}
    assert all(sorted(order) == [0, 0, 1, 1] for order in orders)
    assert len(orders) == 6  # every arrangement of two and two turns up
    assert sorted(permuted_block(6)) == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError):
        permuted_block(3)


@pytest.mark.django_db
def test_the_draws_of_a_wave_follow_permuted_blocks():
    wave = _wave()
    definition = wave.form_version.definition
    halves = [
        draw_balanced(wave=wave, definition=definition, instance_id=uuid.uuid4())["LE_ARM"]
        for _ in range(40)
    ]
    for start in range(0, 40, BLOCK_SIZE):
        assert sorted(halves[start : start + BLOCK_SIZE]) == [0, 0, 1, 1]
    sequence = BalancedSequence.objects.get(wave=wave, name="LE_ARM")
    assert sequence.drawn == 40 and sequence.pending == []
    slots = BalancedDraw.objects.filter(sequence=sequence).order_by("slot")
    assert [d.slot for d in slots] == list(range(40))
    assert [d.half for d in slots] == halves


@pytest.mark.django_db
def test_a_reload_keeps_the_draw_and_uses_no_slot(client):
    wave = _wave()
    url = f"/s/{public_link(wave).token}/"
    instance, draws = _page(client, url)
    for _ in range(3):
        assert _page(client, url) == (instance, draws)
        assert _page(client, url + "?lang=ru") == (instance, draws)
    (draw,) = BalancedDraw.objects.all()
    assert str(draw.instance_id) == instance and draws == {"LE_ARM": draw.half}
    assert BalancedSequence.objects.get().drawn == 1
    # Another browser: the next slot.
    other, _ = _page(Client(), url)
    assert other != instance and BalancedSequence.objects.get().drawn == 2


@pytest.mark.django_db
def test_the_stored_interview_carries_the_drawn_arm_with_and_without_javascript(client):
    wave = _wave()
    url = f"/s/{public_link(wave).token}/"
    seen = Counter()
    for _ in range(BLOCK_SIZE):
        client.cookies.clear()
        instance, draws = _page(client, url)
        arm = draws["LE_ARM"]
        count = "LE_T" if arm else "LE_C"
        posted = {"REGION": "KZ-75", count: "2", "_language": "en", "_instance_id": instance}
        assert client.post(url, posted).status_code == 302  # no arm posted: the server's
        assert Submission.objects.get(instance_id=instance).answers["LE_ARM"] == arm
        seen[arm] += 1
    assert seen == {0: BLOCK_SIZE // 2, 1: BLOCK_SIZE // 2}

    # form.js sends the page's draw with the answers, under its own instance id.
    client.cookies.clear()
    _, draws = _page(client, url)
    arm = draws["LE_ARM"]
    sent = str(uuid.uuid4())
    response = client.post(
        url,
        {
            "instance_id": sent,
            "language": "en",
            "answers": {"REGION": "KZ-75", "LE_ARM": arm, ("LE_T" if arm else "LE_C"): 1},
        },
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert Submission.objects.get(instance_id=sent).answers["LE_ARM"] == arm


@pytest.mark.django_db
def test_several_balanced_rows_draw_from_independent_blocks():
    second = [
        ["calculate", "LE2_ARM", "", "", "", "", "", "once(int(random() * 2))", "list:assign balanced"],
        ["begin_group", "g2_c", "Б", "К", "Control 2", "${LE2_ARM} = 0"],
        ["integer", "LE2_C", "Неше?", "Сколько?", "How many?", "", "", "", "list:control items=3"],
        ["end_group", "g2_c"],
        ["begin_group", "g2_t", "Э", "Э", "Treatment 2", "${LE2_ARM} = 1"],
        ["integer", "LE2_T", "Неше?", "Сколько?", "How many?", "", "", "", "list:treatment"],
        ["end_group", "g2_t"],
    ]  # fmt: skip
    wave = _wave(SURVEY + second)
    definition = wave.form_version.definition
    draws = [
        draw_balanced(wave=wave, definition=definition, instance_id=uuid.uuid4())
        for _ in range(4 * BLOCK_SIZE)
    ]
    for name in ("LE_ARM", "LE2_ARM"):
        arms = [d[name] for d in draws]
        for start in range(0, len(arms), BLOCK_SIZE):
            assert sorted(arms[start : start + BLOCK_SIZE]) == [0, 0, 1, 1]
    assert BalancedSequence.objects.filter(wave=wave).count() == 2
    assert BalancedDraw.objects.count() == 2 * len(draws)
    # Each row has its own slot in its own sequence; the two need not agree.
    assert set(BalancedDraw.objects.values_list("slot", flat=True)) == set(range(len(draws)))


@pytest.mark.django_db
def test_a_plain_assignment_and_the_preview_take_no_slot(admin_client):
    plain = [[*row[:8], "list:assign"] if row[1] == "LE_ARM" else row for row in SURVEY]
    wave = _wave(plain, code="plain")
    _, draws = _page(Client(), f"/s/{public_link(wave).token}/")
    assert draws["LE_ARM"] in (0, 1)
    balanced = _wave(code="bal")
    preview = reverse("admin:surveys_formversion_preview", args=[balanced.form_version.pk])
    assert admin_client.get(preview).status_code == 200
    assert not BalancedDraw.objects.exists() and not BalancedSequence.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_page_loads_never_share_a_slot():
    need(connection.vendor == "postgresql", "concurrent writes need PostgreSQL")
    wave = _wave()
    url = f"/s/{public_link(wave).token}/"
    sessions, per_session = 8, 25
    barrier = threading.Barrier(sessions)
    drawn: list[tuple[str, int]] = []
    failures: list[BaseException] = []

    def respondents() -> None:
        try:
            barrier.wait()
            for _ in range(per_session):
                instance, draws = _page(Client(), url)  # a new browser each time
                drawn.append((instance, draws["LE_ARM"]))
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=respondents) for _ in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert len(drawn) == sessions * per_session == 200
    assert len({instance for instance, _ in drawn}) == 200
    counts = Counter(arm for _, arm in drawn)
    assert abs(counts[0] - counts[1]) <= BLOCK_SIZE
    draws = list(BalancedDraw.objects.order_by("slot").values_list("slot", "half"))
    assert [slot for slot, _ in draws] == list(range(200))
    # In slot order the arms are never more than half a block apart, and 200 slots are
    # 50 whole blocks: exactly 100 each.
    gap = 0
    for _, half in draws:
        gap += 1 if half else -1
        assert abs(gap) <= BLOCK_SIZE // 2
    assert counts == {0: 100, 1: 100}
    assert BalancedSequence.objects.get().drawn == 200
