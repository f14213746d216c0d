"""The enumerators' app in a real Chromium: enrol, work offline, sync, returned, export."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User

from collect.services import send_back
from surveys.models import Submission
from tests.collect.collect_fixtures import assignment_for, tablet_wave, user_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pass-Word-123"


def app(page, live_server) -> None:
    page.goto(f"{live_server.url}/collect/")
    page.wait_for_selector("body[data-ready=yes]")


def enrol(page, live_server, username: str = "aigerim") -> None:
    app(page, live_server)
    page.click('a[data-lang="en"]')
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#enrol-button")
    page.wait_for_selector("#offline-ready:not([hidden])", timeout=20_000)


def interview(page, age: str) -> None:
    page.locator(".new-interview").first.click()
    page.wait_for_selector("#tanys-form section.page.current")
    page.click("#next")  # the start page
    page.locator('input[name="q1"][value="1"]').check()
    page.click("#next")
    page.fill("#f-age", age)
    page.click("#submit")
    page.wait_for_url("**/collect/")
    page.wait_for_selector("body[data-ready=yes]")


def waiting(page) -> int:
    return int(page.locator("#waiting-count").inner_text())


def sent(page) -> int:
    return int(page.locator("#sent-count").inner_text())


def test_offline_interviews_survive_a_closed_page_and_sync_once(browser, live_server):
    wave = tablet_wave()
    enumerator = user_in("enumerator", "aigerim", password=PASSWORD)
    assignment = assignment_for(enumerator, wave, quota=3)
    context = browser.new_context()
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    enrol(page, live_server)
    assert "0 of 3" in page.locator(".assignment .progress-text").inner_text()

    context.set_offline(True)
    for age in ("31", "42", "53"):
        interview(page, age)
    assert waiting(page) == 3
    assert Submission.objects.count() == 0
    page.close()

    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    app(page, live_server)
    assert waiting(page) == 3
    assert page.locator("#connection").get_attribute("data-online") == "no"
    # The quota is reached: the app says so before the next interview starts.
    page.locator(".new-interview").first.click()
    quota = page.locator(f"#quota-{assignment.pk}")
    assert "quota of this assignment is reached (3 of 3)" in quota.inner_text()

    context.set_offline(False)
    page.wait_for_function(
        "document.getElementById('sent-count').textContent === '3'", timeout=20_000
    )
    assert waiting(page) == 0
    stored = Submission.objects.filter(channel="tablet")
    assert stored.count() == 3
    assert sorted(s.answers["age"] for s in stored) == [31, 42, 53]
    one = stored.order_by("answers__age").first()
    assert one.tablet.paradata["pages"] and one.tablet.paradata["ended_at"]
    assert one.tablet.assignment == assignment
    # Send again: nothing new.
    page.click("#send-now")
    page.wait_for_timeout(500)
    assert Submission.objects.count() == 3

    # A supervisor sends one back with comments; the tablet shows them; the fix is a new version.
    send_back(
        submission=one,
        reviewer=user_in("supervisor", "saule"),
        comment="Check the age with the respondent.",
        question_comments={"age": "Is 31 right?"},
    )
    page.click("#refresh")
    returned = page.locator("#returned li[data-id]")
    returned.first.wait_for()
    assert "Check the age with the respondent." in returned.inner_text()
    assert "age: Is 31 right?" in returned.inner_text()
    returned.locator(".fix").click()
    page.wait_for_selector("#review-comment")
    assert "Check the age with the respondent." in page.locator("#review-comment").inner_text()
    page.click("#next")
    page.click("#next")
    assert "Is 31 right?" in page.locator('[data-q="age"] .review-question').inner_text()
    assert page.locator("#f-age").input_value() == "31"
    page.fill("#f-age", "33")
    page.click("#submit")
    page.wait_for_url("**/collect/")
    page.wait_for_function(
        "document.getElementById('sent-count').textContent === '4'", timeout=20_000
    )
    fixed = Submission.objects.get(replaces=one)
    assert fixed.answers["age"] == 33
    one.refresh_from_db()
    assert one.review_status == "rejected"
    assert Submission.objects.count() == 4
    assert page.locator("#returned li[data-id]").count() == 0
    assert errors == []
    context.close()


def test_export_to_a_file_and_import_on_another_tablet(browser, live_server, tmp_path):
    wave = tablet_wave()
    enumerator = user_in("enumerator", "aigerim", password=PASSWORD)
    assignment_for(enumerator, wave)
    first = browser.new_context()
    page = first.new_page()
    enrol(page, live_server)
    first.set_offline(True)
    interview(page, "44")
    interview(page, "45")
    assert waiting(page) == 2
    with page.expect_download() as download:
        page.click("#export")
    path = tmp_path / "export.json"
    download.value.save_as(path)
    exported = json.loads(path.read_text())
    assert exported["format"] == "tanys-collect-export" and len(exported["interviews"]) == 2

    second = browser.new_context()
    other = second.new_page()
    enrol(other, live_server)
    other.set_input_files("#import", str(path))
    other.wait_for_function(
        "document.getElementById('sent-count').textContent === '2'", timeout=20_000
    )
    assert Submission.objects.count() == 2

    # The first tablet comes back online and sends its copies: duplicates, nothing stored twice.
    first.set_offline(False)
    page.click("#send-now")
    page.wait_for_function(
        "document.getElementById('sent-count').textContent === '2'", timeout=20_000
    )
    assert Submission.objects.count() == 2
    assert User.objects.get(username="aigerim").devices.count() == 2
    first.close()
    second.close()
