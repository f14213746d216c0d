"""Content-Security-Policy: every page sends it, none carries an inline script, and in a real
browser every page still works with no violation reported."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from analytics.models import ExportJob
from surveys.models import Submission
from tests.analytics.factories_estimates import make_user, two_waves_with_estimates
from tests.surveys.webform_fixtures import instrument_wave, public_link

# An executable inline script: no src, and not a data block (type="application/json").
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)


def pages(researcher: User) -> dict[str, str]:
    """Every kind of page the project has, as URLs on fresh data."""
    earlier, _later = two_waves_with_estimates()
    link = public_link(instrument_wave())
    job = ExportJob.objects.create(
        requested_by=researcher, kind="microdata", file_format="csv", parameters={"waves": []}
    )
    submission = Submission.objects.first()
    urls = {
        "home": "/",
        "respondent form": f"/s/{link.token}/",
        "thanks": f"/s/{link.token}/thanks/",
        "analytics login": reverse("analytics:login"),
        "dashboard": reverse("analytics:dashboard") + f"?survey={earlier.survey.code}",
        "codebook": reverse("analytics:codebook"),
        "export jobs": reverse("analytics:export-jobs"),
        "export job": reverse("analytics:export-job", args=[job.pk]),
        "api token": reverse("analytics:api-token"),
        "api docs": reverse("api:docs"),
        "admin login": reverse("admin:login"),
        "admin index": reverse("admin:index"),
        "admin submissions": reverse("admin:surveys_submission_changelist"),
        "admin users": reverse("admin:auth_user_changelist"),
        "admin user": reverse("admin:auth_user_change", args=[researcher.pk]),
        "admin form upload": reverse("admin:surveys_formversion_upload"),
    }
    if submission is not None:
        urls["admin submission"] = reverse("admin:surveys_submission_change", args=[submission.pk])
    return urls


def superuser_researcher() -> User:
    user = make_user("aigerim", "researcher", password="dala-kiteap-91")
    user.is_staff = user.is_superuser = True
    user.save()
    user.groups.add(Group.objects.get(name="admin"))
    return user


@pytest.mark.django_db
def test_every_page_sends_the_policy_and_no_inline_script():
    researcher = superuser_researcher()
    urls = pages(researcher)
    anonymous, signed_in = Client(), Client()
    signed_in.force_login(researcher)
    for name, url in urls.items():
        client = anonymous if name in {"analytics login", "admin login"} else signed_in
        response = client.get(url)
        assert response.status_code == 200, (name, url, response.status_code)
        policy = response["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in policy
        html = response.content.decode()
        assert not INLINE_SCRIPT.search(html), (name, INLINE_SCRIPT.search(html))
        assert not INLINE_HANDLER.search(html), (name, INLINE_HANDLER.search(html))


@pytest.mark.django_db
def test_each_response_has_its_own_nonce(client):
    first = client.get("/")["Content-Security-Policy"]
    second = client.get("/")["Content-Security-Policy"]
    nonce = re.compile(r"'nonce-([^']+)'")
    assert nonce.search(first).group(1) != nonce.search(second).group(1)


@pytest.mark.django_db
def test_api_responses_carry_the_policy_too(client):
    assert "default-src 'self'" in client.get("/api/schema/")["Content-Security-Policy"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pages_work_in_a_browser_with_no_policy_violation(live_server, page):
    researcher = superuser_researcher()
    urls = pages(researcher)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: violations.append(f"{page.url}: {error}"))

    page.goto(live_server.url + urls["admin login"])
    page.fill("#id_username", "aigerim")
    page.fill("#id_password", "dala-kiteap-91")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    checks = {
        "respondent form": "form#questionnaire, form",
        "dashboard": "svg.chart",
        "api docs": ".swagger-ui .opblock",
        "export job": "#job-status",
        "admin submissions": "#changelist",
        "admin user": "#user_form",
    }
    for name, url in urls.items():
        if name in {"admin login", "analytics login"}:
            continue
        page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")
        if name in checks:
            page.wait_for_selector(checks[name], timeout=15000)
    # The scripts that replaced inline code still run: the language menu sends itself.
    page.goto(live_server.url + "/")
    page.select_option("#language-select", "ru")
    page.wait_for_selector("html[lang=ru]")
    # The Swagger UI loaded the schema through its own script, not an inline one.
    page.goto(live_server.url + urls["api docs"])
    page.wait_for_selector(".swagger-ui .opblock", timeout=15000)
    assert page.locator(".swagger-ui .opblock").count() > 5
    assert violations == []
