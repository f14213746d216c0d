"""A list experiment in the web form, in a real Chromium: the arm is the server's draw for
the page's interview (for a balanced row, its slot in the wave's permuted blocks), kept in
the draft through reloads and a language switch, and stored with the interview."""

from __future__ import annotations

import json

import pytest

from surveys.assignment import BLOCK_SIZE, recorded_halves
from surveys.models import BalancedDraw, Submission
from surveys.services import import_xlsform, open_wave
from surveys.webform import assigned_values
from tests.factories import build_xlsform
from tests.surveys.webform_fixtures import LANGS, public_link

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SURVEY = [
    ["type", "name", *LANGS, "relevant", "required", "calculation", "tanys_design"],
    ["text", "REGION", "Аймақ", "Регион", "Region", "", "yes"],
    ["calculate", "URBAN", "", "", "", "", "", "1"],
    ["calculate", "LE_ARM", "", "", "", "", "", "once(int(random() * 2))", "list:assign balanced"],
    ["begin_group", "g_le", "Тізім", "Список", "List"],
    ["begin_group", "g_c", "Бақылау", "Контроль", "Control", "${LE_ARM} = 0"],
    [
        "integer",
        "LE_C",
        "Неше? (3)",
        "Сколько? (3)",
        "How many? (3)",
        "",
        "yes",
        "",
        "list:control items=3",
    ],
    ["end_group", "g_c"],
    ["begin_group", "g_t", "Эксперимент", "Эксперимент", "Treatment", "${LE_ARM} = 1"],
    [
        "integer",
        "LE_T",
        "Неше? (4)",
        "Сколько? (4)",
        "How many? (4)",
        "",
        "yes",
        "",
        "list:treatment",
    ],
    ["end_group", "g_t"],
    ["end_group", "g_le"],
]
CHOICES = [["list_name", "name", *LANGS], ["yesno", "1", "Иә", "Да", "Yes"]]


@pytest.fixture
def form_url(live_server):
    settings = [["form_id", "version", "default_language"], ["le", "1", "English (en)"]]
    version, _ = import_xlsform(
        survey_code="le",
        content=build_xlsform(SURVEY, CHOICES, settings),
        filename="le.xlsx",
    )
    wave = open_wave(survey=version.survey, code="L1", geography="KZ2022", form_version=version)
    link = public_link(wave)
    return link, f"{live_server.url}/s/{link.token}/"


def arm_shown(page) -> tuple[int, str]:
    """The arm the draft holds and the count question the page shows."""
    draft = json.loads(
        page.evaluate(
            "localStorage.getItem(Object.keys(localStorage).find((k) => /^tanys:[^:]+$/.test(k)))"
        )
    )
    shown = [name for name in ("LE_C", "LE_T") if page.locator(f'[data-q="{name}"]').is_visible()]
    assert len(shown) == 1, shown
    return draft["answers"]["LE_ARM"], shown[0]


def test_the_arm_survives_reloads_and_a_language_switch(page, form_url):
    link, url = form_url
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url, wait_until="networkidle")
    page.locator("#next").click()
    page.fill("#f-REGION", "KZ-75")
    if page.locator("#next").is_visible():
        page.locator("#next").click()
    arm, shown = arm_shown(page)
    assert arm in (0, 1) and shown == ("LE_C" if arm == 0 else "LE_T")

    for _ in range(6):
        page.reload(wait_until="networkidle")
        assert arm_shown(page) == (arm, shown)

    page.locator('.langs a[data-lang="ru"]').click()
    page.wait_for_url("**lang=ru")
    assert page.locator("html").get_attribute("lang") == "ru"
    assert arm_shown(page) == (arm, shown)

    page.fill(f"#f-{shown}", "2")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.locator("#submit").click()
    assert posted.value.status < 300, posted.value.text()
    page.wait_for_url("**/thanks/**")
    submission = Submission.objects.get(wave=link.wave)
    assert submission.answers["LE_ARM"] == arm
    assert submission.answers[shown] == 2
    assert errors == []


def test_each_new_interview_takes_the_servers_draw_for_its_page(page, form_url):
    link, url = form_url
    # A new interview on this device (its cookie and draft gone) gets a new instance id; the
    # draft records the arm the server drew for that id and rendered, never one of its own:
    # the balanced row's slot in the wave's blocks, not a block of this device.
    drawn: list[str | None] = []
    arms: list[int] = []
    for _ in range(BLOCK_SIZE):
        page.context.clear_cookies()
        page.goto(url, wait_until="networkidle")
        page.evaluate(
            "Object.keys(localStorage).filter((k) => /^tanys:[^:]+$/.test(k)).forEach((k) => localStorage.removeItem(k))"
        )
        page.goto(url + "?lang=en", wait_until="networkidle")
        instance = page.locator('input[name="_instance_id"]').get_attribute("value")
        page.locator("#next").click()
        page.fill("#f-REGION", "KZ-75")
        if page.locator("#next").is_visible():
            page.locator("#next").click()
        arm, shown = arm_shown(page)
        assert arm == BalancedDraw.objects.get(instance_id=instance).half
        halves = recorded_halves(wave=link.wave, instance_id=instance)
        expected = assigned_values(link.wave.form_version.definition, instance, halves)["LE_ARM"]
        assert arm == expected and shown == ("LE_T" if expected else "LE_C")
        page.reload(wait_until="networkidle")
        assert arm_shown(page) == (arm, shown)
        drawn.append(instance)
        arms.append(arm)
    assert len(set(drawn)) == BLOCK_SIZE  # each a new interview
    # One fresh wave's first block: both arms, equally often, whatever this device drew.
    assert sorted(arms) == [0] * (BLOCK_SIZE // 2) + [1] * (BLOCK_SIZE // 2)
    assert BalancedDraw.objects.count() == BLOCK_SIZE
    assert (
        page.evaluate("Object.keys(localStorage).filter((k) => k.startsWith('tanys:block:'))") == []
    )
