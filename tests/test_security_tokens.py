"""API tokens: hashed, expiring, revocable, shown once; a Bearer header is left to others."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apitokens.models import ApiToken, token_digest
from apitokens.services import issue_token, revoke_tokens
from tests.analytics.factories_estimates import make_user

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-42"


def api(secret: str | None = None, scheme: str = "Token") -> APIClient:
    client = APIClient()
    if secret is not None:
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {secret}")
    return client


@pytest.fixture
def researcher():
    return make_user("researcher", "researcher", password=PASSWORD)


def test_token_endpoint_keeps_its_shape_and_stores_only_a_digest(researcher):
    response = api().post("/api/token/", {"username": "researcher", "password": PASSWORD})
    assert response.status_code == 200
    assert list(response.json()) == ["token"]
    secret = response.json()["token"]
    assert len(secret) >= 43  # 256 random bits
    token = ApiToken.objects.get()
    assert token.digest == token_digest(secret) and token.prefix == secret[:8]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM apitokens_apitoken")
        assert not any(secret in str(value) for row in cursor.fetchall() for value in row)
    assert api(secret).get("/api/regions/?geography=KZ2013").json()["count"] == 16


def test_json_body_works_too(researcher):
    response = api().post(
        "/api/token/", {"username": "researcher", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200 and "token" in response.json()


def test_wrong_password_gets_no_token(researcher):
    response = api().post("/api/token/", {"username": "researcher", "password": "nope"})
    assert response.status_code == 400 and "non_field_errors" in response.json()
    assert not ApiToken.objects.exists()


def test_expired_token_is_refused(researcher, settings):
    token, secret = issue_token(user=researcher)
    assert api(secret).get("/api/regions/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api(secret).get("/api/regions/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_token_expires_after_the_configured_days(researcher, settings):
    settings.API_TOKEN_DAYS = 7
    token, _secret = issue_token(user=researcher)
    assert abs((token.expires_at - token.created_at) - timedelta(days=7)) < timedelta(seconds=1)


def test_revoked_token_is_refused(researcher):
    _token, secret = issue_token(user=researcher)
    revoke_tokens(user=researcher)
    assert api(secret).get("/api/regions/").status_code == 401


def test_inactive_user_token_is_refused(researcher):
    _token, secret = issue_token(user=researcher)
    researcher.is_active = False
    researcher.save()
    assert api(secret).get("/api/regions/").status_code == 401


def test_unknown_token_is_401_with_the_token_challenge():
    response = api("not-a-token").get("/api/regions/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_bearer_credentials_are_left_to_other_authenticators(researcher):
    """A Bearer header is not ours: the class answers None, so the request is anonymous
    here (401 from the permission), and another authenticator may claim it."""
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from apitokens.authentication import ApiTokenAuthentication

    _token, secret = issue_token(user=researcher)
    request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {secret}"))
    assert ApiTokenAuthentication().authenticate(request) is None
    assert api("device-token-xyz", scheme="Bearer").get("/api/regions/").status_code == 401


def test_token_page_replaces_earlier_tokens(client, researcher):
    _old, old_secret = issue_token(user=researcher)
    client.force_login(researcher)
    client.post(reverse("analytics:api-token"))
    assert api(old_secret).get("/api/regions/").status_code == 401
    assert ApiToken.objects.usable().count() == 1


def test_token_page_revokes_all(client, researcher):
    _token, secret = issue_token(user=researcher)
    client.force_login(researcher)
    client.post(reverse("analytics:api-token"), {"action": "revoke"})
    assert api(secret).get("/api/regions/").status_code == 401


def test_admin_shows_no_secret_and_cannot_make_tokens(admin_client, researcher):
    _token, secret = issue_token(user=researcher)
    page = admin_client.get(reverse("admin:apitokens_apitoken_changelist")).content.decode()
    assert secret[:8] in page and secret not in page
    assert admin_client.get(reverse("admin:apitokens_apitoken_add")).status_code == 403


def test_plain_text_tokens_are_revoked_by_the_migration(researcher):
    """The data migration turns each rest_framework.authtoken row into a revoked token."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("apitokens.migrations.0002_revoke_plain_text_tokens")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp "
            "with time zone NOT NULL, user_id integer NOT NULL)"
            if connection.vendor == "postgresql"
            else "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created datetime "
            "NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)",
            ["a" * 40, timezone.now(), researcher.pk],
        )
    migration.revoke_plain_text_tokens(apps, SimpleNamespace(connection=connection))
    token = ApiToken.objects.get()
    assert token.revoked_at is not None and token.digest == token_digest("a" * 40)
    assert api("a" * 40).get("/api/regions/").status_code == 401
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM authtoken_token")
        assert cursor.fetchone()[0] == 0
