"""Schemathesis against the API's own OpenAPI schema, with an admin's and a researcher's token.

Every operation of ``/api/schema/`` is called with generated requests (valid ones, and the
invalid ones schemathesis derives) through the WSGI application, with both tokens, and every
response is checked: no 5xx, only the status codes, content types and headers the schema
documents, bodies that match it, schema-valid requests accepted. Bounded: a few examples per
operation and phase, about a minute in all.

Two checks are narrowed, for reasons the schema cannot state:
- a schema-valid body may still be refused (400 or 404) for the data it names: credentials
  that do not exist (``/api/token/``, enrolling a tablet), an export job of waves that do not
  exist, an enrolment code for an enumerator who does not exist, an assignments file whose
  rows name enumerators, waves or regions that do not exist;
- the list filters ignore an empty or unreadable boolean/choice value (``?geography=``), as
  django-filter does, rather than refusing it: the check that invalid input is refused is off.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from config.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
DATA_DEPENDENT = {
    ("POST", "/api/token/"),
    ("POST", "/api/export-jobs/"),
    ("POST", "/api/collect/assignments/upload/"),
    ("POST", "/api/collect/devices/"),
    ("POST", "/api/collect/enrolment-codes/"),
}
REQUESTS = {"checked": 0}


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print(f"\nschemathesis: {REQUESTS['checked']} requests checked, admin and researcher tokens")


@pytest.fixture
def tokens(db, client, settings):
    """Tokens of an admin (superuser) and of a researcher, obtained as clients do.

    The WSGI calls that follow share the test's transaction: Django must not close the
    connection as each request starts and ends (its test client unhooks the same handlers).
    """
    from django.contrib.auth import get_user_model
    from django.core import signals
    from django.db import close_old_connections

    from tests.analytics.factories_estimates import make_user, two_waves_with_estimates

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    two_waves_with_estimates()
    get_user_model().objects.create_superuser("root", "root@example.org", "correct-horse-42")
    make_user("researcher", "researcher")
    obtained = {
        name: client.post("/api/token/", {"username": name, "password": "correct-horse-42"}).json()[
            "token"
        ]
        for name in ("root", "researcher")
    }
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield obtained
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
def test_every_operation_answers_as_its_schema_says(case, tokens):
    excluded = [negative_data_rejection]
    if (case.method.upper(), case.operation.path) in DATA_DEPENDENT:
        excluded.append(positive_data_acceptance)
    for token in tokens.values():
        # The WSGI call hands back the body as sent: ask for it uncompressed.
        case.call_and_validate(
            headers={"Authorization": f"Token {token}", "Accept-Encoding": "identity"},
            excluded_checks=excluded,
        )
        REQUESTS["checked"] += 1
