"""Sending in a real Chromium: nobody is thanked before the server has stored the answers."""

from __future__ import annotations

import pytest

from surveys.models import Submission
from tests.surveys.webform_fixtures import instrument_wave, public_link, stored_state

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLOSING_RU = "Большое спасибо за участие в опросе!"
NOT_SENT_RU = "Ваши ответы ещё не отправлены"


def open_last_page(page, url: str, token: str, lang: str = "ru") -> None:
    page.goto(f"{url}/s/{token}/?lang={lang}", wait_until="networkidle")
    page.evaluate(stored_state(token, lang=lang))
    page.reload(wait_until="networkidle")


def test_closing_note_is_shown_only_after_the_server_stored_the_answers(page, live_server):
    link = public_link(instrument_wave())
    open_last_page(page, live_server.url, link.token)
    assert page.locator("#submit").is_visible()
    # The last page does not thank the respondent: it says the answers are not sent yet.
    assert CLOSING_RU not in page.locator("body").inner_text()
    assert NOT_SENT_RU in page.locator("#send-note").inner_text()
    assert page.locator("#send-note").is_visible()
    assert page.locator("#submit").inner_text() == "Отправить ответы"
    page.locator("#back").click()
    assert page.locator("#send-note").is_hidden()  # only on the last page
    page.locator("#next").click()

    page.locator("#submit").click()
    page.wait_for_url("**/thanks/**")
    assert Submission.objects.count() == 1
    assert CLOSING_RU in page.locator("main").inner_text()
    assert page.locator("html").get_attribute("lang") == "ru"


def test_closing_note_not_shown_without_javascript(browser, live_server):
    link = public_link(instrument_wave())
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/s/{link.token}/?lang=kk", wait_until="networkidle")
        body = page.locator("body").inner_text()
        assert "Сауалнамаға қатысқаныңызға көп рахмет!" not in body
        assert "әлі жіберілген жоқ" in page.locator("#send-note").inner_text()
        assert page.locator("#send-note").is_visible()
    finally:
        context.close()


def test_sending_is_a_status_not_an_error(page, live_server):
    link = public_link(instrument_wave())
    open_last_page(page, live_server.url, link.token, lang="en")
    held = []
    page.route(f"**/s/{link.token}/", lambda route: held.append(route))
    page.locator("#submit").click()
    page.locator("#status").filter(has_text="Sending your answers").wait_for()
    status = page.locator("#status")
    assert status.get_attribute("role") == "status"
    assert status.get_attribute("aria-live") == "polite"
    # The error box (an alert, red-bordered) stays empty and unseen.
    assert page.locator("#summary").inner_text() == ""
    assert page.locator("#summary").evaluate("e => getComputedStyle(e).borderTopStyle") == "none"
    held[0].continue_()
    page.wait_for_url("**/thanks/**")
    assert Submission.objects.count() == 1


def visible_language_links(page) -> list[str]:
    return [
        a.get_attribute("data-lang") for a in page.locator("a[data-lang]").all() if a.is_visible()
    ]


def test_language_choice_appears_once_on_the_first_page(browser, live_server):
    link = public_link(instrument_wave())
    for javascript in (True, False):
        context = browser.new_context(java_script_enabled=javascript)
        page = context.new_page()
        try:
            page.goto(f"{live_server.url}/s/{link.token}/", wait_until="networkidle")
            assert visible_language_links(page) == ["kk", "ru", "en"], javascript
            if javascript:
                page.locator("#next").click()
                # Past the start page the bar offers the languages, once.
                assert page.locator("#langs").is_visible()
                assert visible_language_links(page) == ["kk", "ru", "en"]
            assert page.title() == "Қазақстандағы бейресми байланыстар"
        finally:
            context.close()


KEPT_EN = "Your answers are kept on this device"


def test_without_javascript_every_error_is_a_link_to_its_question(browser, live_server):
    link = public_link(instrument_wave())
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/s/{link.token}/?lang=en", wait_until="networkidle")
        # Without JavaScript nothing is kept on the device, so the page does not promise it.
        assert page.get_by_text(KEPT_EN).is_hidden()
        page.fill("#f-BIRTH_YEAR", "2015")
        page.locator("#submit").click()
        page.wait_for_load_state("networkidle")
        links = page.locator("#summary li a")
        invalid = page.locator(".q.invalid")
        assert invalid.count() > 10
        assert links.count() == invalid.count()
        targets = [a.get_attribute("href") for a in links.all()]
        assert targets == ["#" + box.get_attribute("id") for box in invalid.all()]
        assert any(
            "In what year were you born?" in a.inner_text() and "18 and over" in a.inner_text()
            for a in links.all()
        )
        links.first.click()
        assert page.url.endswith(targets[0])
        assert Submission.objects.count() == 0
    finally:
        context.close()


def test_with_javascript_the_page_says_answers_are_kept(page, live_server):
    link = public_link(instrument_wave())
    page.goto(f"{live_server.url}/s/{link.token}/?lang=en", wait_until="networkidle")
    assert page.get_by_text(KEPT_EN).is_visible()


def test_opening_the_thank_you_page_does_not_delete_a_draft(page, live_server):
    link = public_link(instrument_wave())
    open_last_page(page, live_server.url, link.token)
    page.goto(f"{live_server.url}/s/{link.token}/thanks/?lang=ru", wait_until="networkidle")
    assert page.evaluate(f"localStorage.getItem('tanys:{link.token}')") is not None
    assert Submission.objects.count() == 0
