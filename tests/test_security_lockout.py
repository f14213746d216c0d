"""Login lockout (django-axes): 30 wrong passwords, then the right one is refused, everywhere."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.analytics.factories_estimates import make_user

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-42"

LOGINS = {
    "admin": "/admin/login/",
    "dashboard": "/analytics/login/",
    "api": "/api/token/",
}


@pytest.fixture
def staff_researcher():
    user = make_user("aigerim", "researcher", password=PASSWORD)
    user.is_staff = True
    user.save()
    return user


def attempt(client: Client, url: str, password: str, language: str = "en"):
    return client.post(
        url, {"username": "aigerim", "password": password}, HTTP_ACCEPT_LANGUAGE=language
    )


@pytest.mark.parametrize("where", list(LOGINS))
def test_thirty_wrong_passwords_lock_out_the_right_one(where, staff_researcher):
    client = Client()
    url = LOGINS[where]
    for _ in range(30):
        response = attempt(client, url, "wrong-password")
        assert response.status_code in (200, 400, 429)
    response = attempt(client, url, PASSWORD)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    text = response.content.decode()
    assert "Too many failed logins" in text
    assert "_auth_user_id" not in client.session
    if where == "api":
        assert response.json()["detail"].startswith("Too many failed logins")
        assert "token" not in response.json()


def test_a_few_mistakes_do_not_lock_out(staff_researcher, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, LOGINS["dashboard"], "wrong-password")
    response = attempt(client, LOGINS["dashboard"], PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("analytics:dashboard")


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("kk", "Бұл тіркелгіге"),
        ("ru", "Слишком много неудачных попыток"),
        ("en", "Too many failed logins"),
    ],
)
def test_lockout_message_is_translated(language, text, staff_researcher, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, LOGINS["dashboard"], "wrong-password", language)
    response = attempt(client, LOGINS["dashboard"], PASSWORD, language)
    assert response.status_code == 429
    assert text in response.content.decode()


def test_lockout_is_per_username_and_address(staff_researcher, settings):
    make_user("dana", "researcher", password=PASSWORD)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, LOGINS["dashboard"], "wrong-password")
    other = client.post(LOGINS["dashboard"], {"username": "dana", "password": PASSWORD})
    assert other.status_code == 302
    elsewhere = Client(REMOTE_ADDR="10.1.2.3")
    assert attempt(elsewhere, LOGINS["dashboard"], PASSWORD).status_code == 302
