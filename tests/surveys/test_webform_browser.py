"""The web questionnaire in a real Chromium: the real instrument, Kazakh then Russian."""

from __future__ import annotations

import json

import pytest

from surveys.models import Submission
from tests.surveys.webform_fixtures import (
    SPHERES,
    TRUST,
    complete_answers,
    instrument_wave,
    public_link,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


BIRTH_YEAR_KK = "Бұл сауалнама 18 жасқа толған және одан үлкен ересектерге арналған."


def choose(page, name: str, code: str) -> None:
    page.locator(f'input[name="{name}"][value="{code}"]').check()


def next_page(page) -> None:
    page.locator("#next").click()


def current_title(page) -> str:
    return page.locator("section.page.current h2").inner_text()


def test_respondent_fills_the_instrument_in_kazakh_and_russian(page, live_server):
    wave = instrument_wave()
    link = public_link(wave)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{live_server.url}/s/{link.token}/", wait_until="networkidle")

    # The form's default language (Kazakh) is used, not the browser's (en-US here).
    assert page.locator("html").get_attribute("lang") == "kk"
    assert page.locator('.langs a[aria-current="true"]').inner_text() == "Қазақша"
    assert page.locator("#next").inner_text() == "Бастау"
    # Only the start page is shown; the others are hidden pages.
    assert page.locator("section.page.current").get_attribute("data-page") == "0"
    next_page(page)  # the introduction (a note on its own page)
    assert "Сәлеметсіз бе" in page.locator("section.page.current").inner_text()
    assert page.locator("#progress-text").inner_text() == "22 беттің 1-беті"

    next_page(page)
    assert current_title(page) == "Тұрғылықты жер"
    # A required question left empty is announced in Kazakh, and focus goes to it.
    next_page(page)
    # (the form's own required_message, in Kazakh)
    assert "Жауаптардың бірін таңдаңыз." in page.locator("#summary").inner_text()
    assert page.evaluate("document.activeElement.name") == "REGION"
    choose(page, "REGION", "KZ-75")
    choose(page, "SETTLEMENT", "1")
    next_page(page)

    assert current_title(page) == "Өзіңіз туралы"
    choose(page, "SEX", "2")
    page.fill("#f-BIRTH_YEAR", "2015")
    for name, code in (("EDU", "5"), ("EMP", "2"), ("ETH", "1"), ("INCOME", "3")):
        choose(page, name, code)
    page.fill("#f-HH_SIZE", "3")
    next_page(page)
    # The BIRTH_YEAR constraint, in Kazakh, next to the question and in the alert summary.
    assert current_title(page) == "Өзіңіз туралы"
    assert BIRTH_YEAR_KK in page.locator("#e-BIRTH_YEAR").inner_text()
    assert BIRTH_YEAR_KK in page.locator("#summary").inner_text()
    assert page.locator("#f-BIRTH_YEAR").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "f-BIRTH_YEAR"
    page.fill("#f-BIRTH_YEAR", "1985")
    next_page(page)

    # Midway, switch to Russian: same page, Russian texts, answers kept.
    assert current_title(page) != "Өзіңіз туралы"
    page.locator('.langs a[data-lang="ru"]').click()
    page.wait_for_url("**lang=ru")
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("lang") == "ru"
    assert current_title(page) == "Ваше мнение о ситуации в стране"
    page.locator("#back").click()
    assert current_title(page) == "О вас"
    assert page.input_value("#f-BIRTH_YEAR") == "1985"
    assert page.locator('input[name="SEX"][value="2"]').is_checked()
    next_page(page)
    choose(page, "P1", "1")
    choose(page, "P2", "2")
    next_page(page)
    next_page(page)  # the spheres introduction

    for sphere in SPHERES:
        assert page.locator(f"#q-C_{sphere}").is_visible()
        # Skip logic: the follow-ups appear only after a "yes".
        assert page.locator(f"#q-B_{sphere}").is_hidden()
        assert page.locator(f"#q-N_{sphere}").is_hidden()
        if sphere == "MED":
            choose(page, "C_MED", "1")
            assert page.locator("#q-B_MED").is_visible()
            assert page.locator("#q-N_MED").is_visible()
            choose(page, "B_MED", "1")
            choose(page, "N_MED", "2")
        else:
            choose(page, f"C_{sphere}", "2")
            assert page.locator(f"#q-B_{sphere}").is_hidden()
        next_page(page)

    assert current_title(page) == "Личный опыт"
    choose(page, "E1", "3")
    choose(page, "E2", "4")
    assert page.locator("#q-M").is_hidden()  # motives only for those with experience
    choose(page, "E2", "2")
    assert page.locator("#q-M").is_visible()
    page.locator('input[name="M"][value="M2"]').check()
    assert page.locator("#q-M_OTHER").is_hidden()
    choose(page, "T1", "2")
    choose(page, "R1", "2")

    # A reload loses nothing.
    page.reload(wait_until="networkidle")
    assert current_title(page) == "Личный опыт"
    assert page.locator('input[name="E2"][value="2"]').is_checked()
    assert page.locator('input[name="M"][value="M2"]').is_checked()
    next_page(page)
    # The indirect designs: the list experiment shows one arm's count, then the two items.
    assert current_title(page) == "Несколько действий"
    arm = json.loads(page.evaluate(f"localStorage.getItem('tanys:{link.token}')"))["answers"][
        "LE_ARM"
    ]
    shown, hidden = ("LE_C", "LE_T") if arm == 0 else ("LE_T", "LE_C")
    assert page.locator(f"#q-{hidden}").is_hidden()
    page.fill(f"#f-{shown}", "1")
    next_page(page)
    choose(page, "RR_E1", "2")
    next_page(page)
    choose(page, "CW_E1", "1")
    next_page(page)
    for item in ("A1", "A2", "A3"):
        choose(page, item, "2")
    next_page(page)
    for item in TRUST:
        choose(page, item, "3")
    # Trust is the last page: the closing note waits for the thank-you page.
    assert page.locator("#submit").is_visible()
    assert "Большое спасибо" not in page.locator("body").inner_text()

    state = json.loads(page.evaluate(f"localStorage.getItem('tanys:{link.token}')"))
    page.locator("#submit").dblclick()
    page.wait_for_url("**/thanks/**")
    assert "Спасибо" in page.locator("h1").inner_text()
    assert "Большое спасибо за участие в опросе!" in page.locator("main").inner_text()

    # The browser retries the same interview (a timeout, say): still one stored interview.
    retry = page.request.post(
        f"{live_server.url}/s/{link.token}/",
        data=json.dumps(
            {"instance_id": state["id"], "language": "ru", "answers": _sent(state["answers"])}
        ),
        headers={"Content-Type": "application/json"},
    )
    assert retry.status == 200
    assert Submission.objects.count() == 1
    submission = Submission.objects.get()
    assert str(submission.instance_id) == state["id"]
    assert submission.language == "ru"
    assert submission.channel == "web"
    assert submission.user_agent_class == "phone" or submission.user_agent_class == "desktop"
    assert submission.region.code == "KZ-75"
    assert submission.stratum == "KZ-75-U"
    a = submission.answers
    assert (a["REGION"], a["SETTLEMENT"], a["URBAN"], a["BIRTH_YEAR"]) == ("KZ-75", 1, 1, 1985)
    assert (a["C_MED"], a["B_MED"], a["N_MED"]) == (1, 1, 2)
    for sphere in set(SPHERES) - {"MED"}:
        assert (a[f"C_{sphere}"], a[f"B_{sphere}"], a[f"N_{sphere}"]) == (2, -3, -3)
    assert (a["E1"], a["E2"], a["M"]) == (3, 2, ["M2"])
    assert (a["LE_ARM"], a[shown], a["RR_E1"], a["CW_E1"]) == (arm, 1, 2, 1)
    assert hidden not in a
    assert "M_OTHER" not in a and "R1_OTHER" not in a
    assert a["TR_NGO"] == 3
    assert submission.started_at is not None and submission.duration_seconds is not None

    # Opening the public link again in this browser says it took part already.
    page.goto(f"{live_server.url}/s/{link.token}/", wait_until="networkidle")
    assert page.locator("#done").is_visible()
    assert page.locator("#tanys-form").is_hidden()
    assert errors == []


def _sent(answers: dict) -> dict:
    """What form.js sends: only answers to relevant questions (the instrument's skips)."""
    sent = {k: v for k, v in answers.items() if v not in ("", [])}
    for sphere in SPHERES:
        if sent.get(f"C_{sphere}") != "1":
            sent.pop(f"B_{sphere}", None)
            sent.pop(f"N_{sphere}", None)
    sent.pop("LE_T" if sent.get("LE_ARM") == 0 else "LE_C", None)
    return sent


def _stored_state(token: str, **answers: str) -> str:
    state = {
        "id": "5b1c3d0e-1111-4222-8333-944455556666",
        "page": 999,  # the last page
        "lang": "en",
        "started": None,
        "answers": {**complete_answers(), **answers},
    }
    return f"localStorage.setItem('tanys:{token}', {json.dumps(json.dumps(state))})"


def test_server_refusal_comes_back_next_to_the_question(page, live_server):
    """The server is authoritative: what the browser let through comes back per question."""
    link = public_link(instrument_wave())
    page.goto(f"{live_server.url}/s/{link.token}/?lang=en", wait_until="networkidle")
    # A region code the form does not offer (a tampered or stale page).
    page.evaluate(_stored_state(link.token, REGION="KZ-99"))
    page.reload(wait_until="networkidle")
    page.locator("#submit").click()
    page.locator("#e-REGION").filter(has_text="Choose one of the options offered.").wait_for()
    assert page.locator("#q-REGION").is_visible()
    assert "Please correct the answers marked below." in page.locator("#summary").inner_text()
    assert Submission.objects.count() == 0


def test_wave_closed_while_answering_is_explained(page, live_server):
    wave = instrument_wave()
    link = public_link(wave)
    page.goto(f"{live_server.url}/s/{link.token}/?lang=en", wait_until="networkidle")
    page.evaluate(_stored_state(link.token))
    page.reload(wait_until="networkidle")
    wave.is_open = False
    wave.save()
    page.locator("#submit").click()
    page.locator("#summary").filter(has_text="closed").wait_for()
    assert Submission.objects.count() == 0
    # The answers stay on the device.
    assert page.evaluate(f"localStorage.getItem('tanys:{link.token}')") is not None
