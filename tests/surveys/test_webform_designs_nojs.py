"""A list experiment in the web form without JavaScript: the server draws the arm for the
page's interview, renders only that arm's items, keeps it through reloads, and stores it."""

from __future__ import annotations

import re

import pytest

from surveys.models import Submission
from surveys.services import import_xlsform, open_wave
from tests.factories import build_xlsform
from tests.surveys.test_webform_designs import CHOICES, SURVEY
from tests.surveys.webform_fixtures import public_link

pytestmark = pytest.mark.django_db

CONTROL, TREATMENT = "How many? (3)", "How many? (4)"


@pytest.fixture
def link():
    settings = [["form_id", "version", "default_language"], ["le", "1", "English (en)"]]
    version, _ = import_xlsform(
        survey_code="le", content=build_xlsform(SURVEY, CHOICES, settings), filename="le.xlsx"
    )
    wave = open_wave(survey=version.survey, code="L1", geography="KZ2022", form_version=version)
    return public_link(wave)


def _page(client, url) -> tuple[str, int]:
    html = client.get(url).content.decode()
    instance = re.search(r'name="_instance_id" value="([^"]+)"', html)
    assert instance is not None
    shown = [arm for arm, name in ((0, "LE_C"), (1, "LE_T")) if f'name="{name}"' in html]
    assert len(shown) == 1, shown
    if "lang=" not in url:  # English: not even the other arm's wording is sent
        assert (CONTROL in html, TREATMENT in html) == (shown[0] == 0, shown[0] == 1)
    return instance.group(1), shown[0]


def test_each_page_shows_one_arm_kept_on_reload_and_stored(client, link):
    url = f"/s/{link.token}/"
    seen = set()
    for _ in range(30):
        client.cookies.clear()
        instance, arm = _page(client, url)
        assert _page(client, url) == (instance, arm)  # a reload: same interview, same arm
        assert _page(client, url + "?lang=ru")[1] == arm  # another language, same arm
        if arm in seen:
            continue
        seen.add(arm)
        response = client.post(
            url,
            {
                "REGION": "KZ-75",
                "LE_T" if arm else "LE_C": "2",
                "_language": "en",
                "_instance_id": instance,
                "_started_at": "2026-12-01T10:00:00+00:00",
            },
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        stored = Submission.objects.get(instance_id=instance)
        assert stored.answers["LE_ARM"] == arm
        assert stored.answers["LE_T" if arm else "LE_C"] == 2
        assert ("LE_C" if arm else "LE_T") not in stored.answers
        # stored: the next page on this browser is a new interview
        assert _page(client, url)[0] != instance
        if seen == {0, 1}:
            break
    assert seen == {0, 1}
