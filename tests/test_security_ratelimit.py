"""Rate limit of the public links /s/<token>/: a crowd behind one address gets through,
scripts without cookies do not, and the address is never kept."""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.cache import cache
from django.test import Client

from surveys.models import Submission
from surveys.ratelimit import COOKIE_NAME, Rate, address_key, link_key, refill
from surveys.services import create_links
from tests.surveys.webform_fixtures import complete_answers, instrument_wave, public_link

pytestmark = pytest.mark.django_db
NAT = "100.64.0.1"  # one carrier-grade NAT address for everyone


@pytest.fixture
def link():
    return public_link(instrument_wave())


def answers(language: str = "kk") -> str:
    return json.dumps(
        {"instance_id": str(uuid.uuid4()), "language": language, "answers": complete_answers()}
    )


def post_json(client: Client, link, language: str = "kk"):
    response = client.post(f"/s/{link.token}/", answers(language), content_type="application/json")
    assert response.status_code in (200, 429), response.json().get("errors")
    return response


def test_the_bucket_refills_at_its_pace_up_to_its_burst():
    rate = Rate(burst=10, per_minute=60)
    assert refill(0, 100.0, 101.0, rate) == 1.0
    assert refill(4, 100.0, 103.5, rate) == 7.5
    assert refill(9, 100.0, 200.0, rate) == 10
    assert refill(5, 100.0, 90.0, rate) == 5  # a clock step back adds nothing


def test_a_crowd_behind_one_address_all_gets_through(link):
    """150 respondents behind one NAT open the link within a minute and submit: every
    request passes (each browser has its own bucket once it has its cookie)."""
    for _ in range(150):
        browser = Client(REMOTE_ADDR=NAT)
        page = browser.get(f"/s/{link.token}/")
        assert page.status_code == 200
        assert COOKIE_NAME in page.cookies
        assert browser.get(f"/s/{link.token}/?lang=ru").status_code == 200
    stored_before = Submission.objects.count()
    for _ in range(30):
        browser = Client(REMOTE_ADDR=NAT)
        browser.get(f"/s/{link.token}/")
        assert post_json(browser, link).status_code == 200
    assert Submission.objects.count() == stored_before + 30


def test_scripted_submissions_without_cookies_are_held_back(link, settings):
    """The issue's probe: 50 scripted interviews with no cookies from one address."""
    statuses = [post_json(Client(REMOTE_ADDR=NAT), link).status_code for _ in range(50)]
    allowed = settings.RATE_LIMIT_COOKIELESS_BURST / settings.RATE_LIMIT_COOKIELESS_POST_COST
    assert statuses.count(200) <= allowed + 1
    assert statuses.count(429) >= 50 - allowed - 1
    assert Submission.objects.count() == statuses.count(200)


def test_429_for_the_form_script_is_json_with_retry_after_in_its_language(link, settings):
    settings.RATE_LIMIT_COOKIELESS_BURST = 20
    settings.RATE_LIMIT_COOKIELESS_PER_MINUTE = 1
    assert post_json(Client(REMOTE_ADDR=NAT), link).status_code == 200
    refused = post_json(Client(REMOTE_ADDR=NAT), link, language="ru")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    body = refused.json()
    assert body["code"] == "rate_limited"
    assert body["message"].startswith("Слишком много запросов")


def test_429_page_in_three_languages(link, settings):
    settings.RATE_LIMIT_COOKIELESS_BURST = 2
    settings.RATE_LIMIT_COOKIELESS_PER_MINUTE = 1
    client = Client(REMOTE_ADDR=NAT, enforce_csrf_checks=False)
    client.get(f"/s/{link.token}/")  # takes the cookie...
    client.cookies.clear()  # ...and throws it away, as a script would
    Client(REMOTE_ADDR=NAT).get(f"/s/{link.token}/")
    page = client.get(f"/s/{link.token}/")
    assert page.status_code == 429 and page["Content-Type"].startswith("text/html")
    assert int(page["Retry-After"]) >= 1
    html = page.content.decode()
    for text in ("Біраз күтіп", "Подождите немного", "Please wait a moment"):
        assert text in html


def test_one_browser_over_its_limit_does_not_stop_its_neighbours(link, settings):
    settings.RATE_LIMIT_CLIENT_BURST = 5
    settings.RATE_LIMIT_CLIENT_PER_MINUTE = 1
    greedy = Client(REMOTE_ADDR=NAT)
    statuses = [greedy.get(f"/s/{link.token}/").status_code for _ in range(8)]
    # The first request had no cookie yet (the address bucket); then five from its own.
    assert statuses[:6] == [200] * 6 and statuses[6:] == [429, 429]
    neighbour = Client(REMOTE_ADDR=NAT)
    assert neighbour.get(f"/s/{link.token}/").status_code == 200
    assert neighbour.get(f"/s/{link.token}/").status_code == 200


def test_a_forged_or_expired_cookie_counts_as_none(link, settings):
    settings.RATE_LIMIT_COOKIELESS_BURST = 3
    settings.RATE_LIMIT_COOKIELESS_PER_MINUTE = 1
    forger = Client(REMOTE_ADDR=NAT)
    statuses = []
    for _ in range(4):
        forger.cookies[COOKIE_NAME] = "made-up:value"
        statuses.append(forger.get(f"/s/{link.token}/").status_code)
    assert statuses == [200, 200, 200, 429]


def test_the_limit_is_per_link(link, settings):
    settings.RATE_LIMIT_COOKIELESS_BURST = 1
    settings.RATE_LIMIT_COOKIELESS_PER_MINUTE = 1
    other = create_links(wave=link.wave, kind="public", count=1)[0]
    client = Client(REMOTE_ADDR=NAT)
    client.cookies.clear()
    assert client.get(f"/s/{link.token}/").status_code == 200
    client.cookies.clear()
    assert client.get(f"/s/{link.token}/").status_code == 429
    assert client.get(f"/s/{other.token}/").status_code == 200


def test_the_address_is_never_kept(link, settings):
    Client(REMOTE_ADDR=NAT).get(f"/s/{link.token}/")
    key = address_key(NAT)
    assert NAT not in key and len(key) == 32
    if settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        client = cache._cache.get_client()  # type: ignore[attr-defined]
        keys = [k.decode() for k in client.scan_iter(f"*tanys:rl:*{link_key(link.token)}*")]
        assert keys and not any(NAT in k for k in keys)
        assert all(client.ttl(k) > 0 for k in keys)  # buckets expire
    for submission in Submission.objects.all():
        assert NAT not in json.dumps(submission.paradata, default=str)


def test_the_cache_down_lets_respondents_through(link, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    assert post_json(Client(REMOTE_ADDR=NAT), link).status_code == 200


def test_behind_a_proxy_the_forwarded_address_is_the_client(link, settings):
    settings.TANYS_BEHIND_PROXY = True
    settings.RATE_LIMIT_COOKIELESS_BURST = 1
    settings.RATE_LIMIT_COOKIELESS_PER_MINUTE = 1
    proxy = "10.0.0.2"
    first = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="spoofed, 198.51.100.7")
    assert first.get(f"/s/{link.token}/").status_code == 200
    second = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert second.get(f"/s/{link.token}/").status_code == 200
    again = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="other, 198.51.100.7")
    assert again.get(f"/s/{link.token}/").status_code == 429
