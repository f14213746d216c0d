"""The preview of a web form in a real Chromium: answered to the end, checked by the
server, and nothing kept, neither on the server nor as a draft in the browser."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from playwright.sync_api import expect

from audit.models import AuditEvent
from surveys.models import Submission
from tests.factories import simple_form_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_preview_is_answered_checked_and_forgotten(page, live_server, client):
    version = simple_form_version()
    staff = get_user_model().objects.create_superuser("staff", "s@example.org", "pw-Long-1x")
    client.force_login(staff)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    events = AuditEvent.objects.count()
    url = live_server.url + reverse("admin:surveys_formversion_preview", args=[version.pk])
    page.goto(url + "?lang=en", wait_until="networkidle")
    expect(page.locator(".preview-banner p[lang=en]")).to_have_text(
        "Preview — answers are not saved"
    )
    page.locator("#next").click()
    page.locator('input[name="q1"][value="1"]').check()
    page.locator('input[name="q2"]').fill("41")
    assert page.evaluate(f"localStorage.getItem('tanys:preview-{version.pk}')") is None
    while page.locator("#submit").is_hidden():
        page.locator("#next").click()
    page.locator("#submit").click()
    expect(page.locator(".preview-result h1")).to_have_text(
        "The answers are valid. Nothing was stored."
    )
    expect(page.locator(".preview-result")).to_contain_text("1 = Yes")
    page.screenshot(path="/tmp/exportsadmin_preview.png", full_page=True)
    assert page.evaluate(f"localStorage.getItem('tanys:preview-{version.pk}')") is None
    assert Submission.objects.count() == 0
    assert AuditEvent.objects.count() == events
