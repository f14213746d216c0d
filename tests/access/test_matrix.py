"""The access matrix: every URL pattern and every API operation against every role.

The patterns come from walking the URL resolver (the site's, the admin's and the API's)
and the operations from the OpenAPI schema at /api/schema/; neither is listed by hand.
Each must have a declared rule below, or the test fails naming it: a new endpoint cannot
ship without a decision on who may use it.

Outcomes: "ok" (2xx), "login" (a redirect to a login page), "redirect" (any other
redirect), or the status code. Non-staff users meet the admin as anonymous users do: its
login page. Objects are those of `access_world` (survey A, region A), so a role scoped to
another survey or to someone else's export job gets 403 or 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, path
from rest_framework.test import APIClient

from analytics.models import BreakdownEstimate, IndicatorEstimate
from tests.access.access_world import PASSWORD, ROLES, World, build_world

pytestmark = pytest.mark.django_db

Outcome = str | int
LOGIN_PATHS = ("/admin/login/", "/analytics/login/")
STAFF = ("supervisor", "admin", "superuser")


def row(
    anonymous: Outcome,
    respondent: Outcome,
    enumerator: Outcome,
    supervisor: Outcome,
    researcher_aggregates: Outcome,
    researcher_microdata: Outcome,
    researcher_other: Outcome,
    admin: Outcome,
    superuser: Outcome,
) -> dict[str, Outcome]:
    return dict(zip(ROLES, locals().values(), strict=True))


def everyone(outcome: Outcome) -> dict[str, Outcome]:
    return dict.fromkeys(ROLES, outcome)


@dataclass(frozen=True)
class Rule:
    expect: dict[str, Outcome]
    method: str = "get"
    query: Callable[[World], dict[str, Any]] | None = None
    data: Callable[[World], dict[str, Any]] | None = None


# Shorthands for the researchers' pages (HTML: anonymous users go to the login page).
SIGNED_IN_ESTIMATES = row("login", "login", 403, "ok", "ok", "ok", "ok", "ok", "ok")
ESTIMATES_OF_A = row("login", "login", 403, "ok", "ok", "ok", 403, "ok", "ok")
MICRODATA_OF_A = row("login", "login", 403, 403, 403, "ok", 403, "ok", "ok")
# An export job of the microdata researcher: nobody else's, not even a superuser's.
OWN_JOB = row("login", "login", 403, 404, 404, "ok", 404, 404, 404)
# The API answers instead of redirecting.
API_ESTIMATES = row(401, 401, 403, "ok", "ok", "ok", "ok", "ok", "ok")
API_OF_A = row(401, 401, 403, "ok", "ok", "ok", 404, "ok", "ok")
API_OF_A_NAMED = row(401, 401, 403, "ok", "ok", "ok", 403, "ok", "ok")
API_OWN_JOB = row(401, 401, 403, 404, 404, "ok", 404, 404, 404)
API_RETRY_GET = row(401, 401, 403, 405, 405, 405, 405, 405, 405)

MICRODATA_BODY = {"file_format": "csv", "language": "en", "values": "codes"}

# The supervisors' pages: a grant to review interviews (supervisor, admin) in survey A.
REVIEWERS = row("login", "login", 403, "ok", 403, 403, 403, "ok", "ok")
REVIEWERS_POST = row("login", "login", 403, "redirect", 403, 403, 403, "redirect", "redirect")
# The tablets' API takes a device's token only: a session or an API token opens nothing.
DEVICE_ONLY = row(401, 401, 403, 403, 403, 403, 403, 403, 403)
API_REVIEWERS_GET = row(401, 401, 403, 405, 403, 403, 403, 405, 405)
API_REVIEWERS = row(401, 401, 403, "ok", 403, 403, 403, "ok", "ok")

URL_RULES: dict[str, Rule] = {
    "": Rule(everyone("ok")),
    "healthz": Rule(everyone("ok")),
    # Public by design: the browser's icon and the web form's service worker (no data).
    "favicon.ico": Rule(everyone("ok")),
    "s/sw.js": Rule(everyone("ok")),
    # The questionnaire opens with its own link only; any other token is unknown.
    "s/<str:token>/": Rule(row(404, "ok", 404, 404, 404, 404, 404, 404, 404)),
    "s/<str:token>/thanks/": Rule(row(404, "ok", 404, 404, 404, 404, 404, 404, 404)),
    "i18n/setlang/": Rule(everyone("redirect"), method="post", data=lambda w: {"language": "en"}),
    # Researchers' pages
    "analytics/": Rule(SIGNED_IN_ESTIMATES),
    "analytics/login/": Rule(row("ok", "ok", *["redirect"] * 7)),
    "analytics/logout/": Rule(everyone("login"), method="post"),
    "analytics/freshness/": Rule(SIGNED_IN_ESTIMATES, query=lambda w: {"wave": w.wave_a.pk}),
    "analytics/regional.<str:file_format>": Rule(
        ESTIMATES_OF_A, query=lambda w: {"waves": w.wave_a.pk}
    ),
    "analytics/microdata/": Rule(
        MICRODATA_OF_A, method="post", data=lambda w: {"waves": [w.wave_a.pk], **MICRODATA_BODY}
    ),
    "analytics/codebook/": Rule(MICRODATA_OF_A, query=lambda w: {"waves": w.wave_a.pk}),
    # Question summaries: the estimates' readers of the wave's survey, page and files alike.
    "analytics/summaries/": Rule(ESTIMATES_OF_A, query=lambda w: {"wave": w.wave_a.pk}),
    "analytics/summaries.<str:file_format>": Rule(
        ESTIMATES_OF_A,
        query=lambda w: {"wave": w.wave_a.pk},
    ),
    "analytics/exports/": Rule(SIGNED_IN_ESTIMATES),
    "analytics/exports/<int:pk>/": Rule(OWN_JOB),
    "analytics/exports/<int:pk>/status/": Rule(OWN_JOB),
    "analytics/exports/<int:pk>/download/": Rule(OWN_JOB),
    # A finished job cannot be retried: its owner is sent back to it with a message.
    "analytics/exports/<int:pk>/retry/": Rule(
        row("login", "login", 403, 404, 404, "redirect", 404, 404, 404), method="post"
    ),
    "analytics/token/": Rule(SIGNED_IN_ESTIMATES),
    # API routes opened as pages (session); the operations are checked from the schema below.
    "api/comparison/": Rule(API_ESTIMATES),
    "api/comparison/download/": Rule(
        API_OF_A_NAMED, query=lambda w: {"file_format": "csv", "wave": w.wave_a.pk}
    ),
    "api/token/": Rule(everyone(405)),
    "api/schema/": Rule(everyone("ok")),
    "api/docs/": Rule(everyone("ok")),
    # The API's index lists the endpoints' addresses, nothing more: any signed-in user.
    "api/": Rule(row(401, 401, *["ok"] * 7)),
    "api/<drf_format_suffix:format>": Rule(row(401, 401, *["ok"] * 7)),
    # Any other address under /api/ answers a JSON 404.
    "api/^.*$": Rule(everyone(404)),
    # The tablets' API opened as pages: enrolment takes a POST only; the rest a device.
    "api/collect/devices/": Rule(everyone(405)),
    "api/collect/devices/<uuid:pk>/revoke/": Rule(API_REVIEWERS_GET),
    "api/collect/enrolment-codes/": Rule(API_REVIEWERS_GET),
    "api/collect/assignments/upload/": Rule(API_REVIEWERS_GET),
    "api/collect/assignments/": Rule(everyone(401)),
    "api/collect/form-versions/<int:pk>/": Rule(everyone(401)),
    "api/collect/sync/": Rule(everyone(401)),
    "api/collect/returned/": Rule(everyone(401)),
    # The enumerators' app: its shell, manifest and service worker hold no data and are
    # public by design (the app enrols a tablet before anything is shown); a questionnaire
    # page needs the device's token.
    "collect/": Rule(everyone("ok")),
    "collect/manifest.webmanifest": Rule(everyone("ok")),
    "collect/sw.js": Rule(everyone("ok")),
    "collect/form/<int:pk>/": Rule(everyone(401)),
    # A supervisor's page: enrolment codes for the enumerators of their surveys.
    "collect/enrolment-code/": Rule(REVIEWERS),
    # Review of interviews: the supervisor of region A and the admin of survey A.
    "review/": Rule(REVIEWERS),
    "review/<uuid:instance_id>/": Rule(REVIEWERS),
    "review/<uuid:instance_id>/decide": Rule(REVIEWERS_POST, method="post"),
    "review/<uuid:instance_id>/files/<str:name>": Rule(REVIEWERS),
    # ODK Collect devices of the enumerators of the requester's surveys.
    "odk/devices/": Rule(REVIEWERS),
    "odk/devices/<uuid:pk>/revoke": Rule(REVIEWERS_POST, method="post"),
    # ODK Collect itself: an account's HTTP Basic credentials over HTTPS only (the test
    # client speaks plain HTTP), or a device's token in the path (none has this one).
    "odk/formList": Rule(everyone(403)),
    "odk/submission": Rule(everyone(403), method="post"),
    "odk/forms/<int:version_id>/form.xml": Rule(everyone(403)),
    "odk/forms/<int:version_id>/manifest": Rule(everyone(403)),
    "odk/<str:token>/formList": Rule(everyone(401)),
    "odk/<str:token>/forms/<int:version_id>/form.xml": Rule(everyone(401)),
    "odk/<str:token>/forms/<int:version_id>/manifest": Rule(everyone(401)),
    "odk/<str:token>/submission": Rule(everyone(401), method="post"),
}
for collection, detail in (
    ("surveys", API_OF_A),
    ("waves", API_OF_A),
    ("regions", API_ESTIMATES),  # reference data, the same for every survey
    ("form-versions", API_OF_A),
    ("estimates", API_OF_A),
    ("breakdown-estimates", API_OF_A),
    ("export-jobs", API_OWN_JOB),
):
    URL_RULES[f"api/^{collection}/$"] = Rule(API_ESTIMATES)
    URL_RULES[f"api/^{collection}\\.(?P<format>[a-z0-9]+)/?$"] = Rule(API_ESTIMATES)
    URL_RULES[f"api/^{collection}/(?P<pk>[^/.]+)/$"] = Rule(detail)
    URL_RULES[f"api/^{collection}/(?P<pk>[^/.]+)\\.(?P<format>[a-z0-9]+)/?$"] = Rule(detail)
for suffix in ("/$", "\\.(?P<format>[a-z0-9]+)/?$"):
    URL_RULES[f"api/^breakdown-estimates/download{suffix}"] = Rule(
        API_ESTIMATES, query=lambda w: {"file_format": "csv"}
    )
    URL_RULES[f"api/^export-jobs/(?P<pk>[^/.]+)/download{suffix}"] = Rule(API_OWN_JOB)
    URL_RULES[f"api/^export-jobs/(?P<pk>[^/.]+)/retry{suffix}"] = Rule(API_RETRY_GET)


def staff(supervisor: Outcome, admin_: Outcome, superuser: Outcome) -> dict[str, Outcome]:
    """An admin page: everyone but staff is sent to the admin's login page."""
    return row("login", "login", "login", supervisor, "login", "login", "login", admin_, superuser)


ALL_STAFF = staff("ok", "ok", "ok")
URL_RULES.update(
    {
        "admin/": Rule(ALL_STAFF),
        "admin/login/": Rule(
            row("ok", "ok", "ok", "redirect", "ok", "ok", "ok", *["redirect"] * 2)
        ),
        # Staff see the admin's "logged out" page; everyone else is sent on.
        "admin/logout/": Rule(
            row(*["redirect"] * 3, "ok", *["redirect"] * 3, "ok", "ok"), method="post"
        ),
        "admin/password_change/": Rule(ALL_STAFF),
        "admin/password_change/done/": Rule(ALL_STAFF),
        # Without its query (app, model, field) the autocomplete refuses.
        "admin/autocomplete/": Rule(staff(403, 403, 403)),
        "admin/jsi18n/": Rule(ALL_STAFF),
        # No model here has a page on the site.
        "admin/r/<path:content_type_id>/<path:object_id>/": Rule(staff(404, 404, 404)),
        "admin/^(?P<app_label>auth|axes|surveys|analytics|audit|apitokens|collect|access)/$": Rule(
            ALL_STAFF
        ),
        "admin/(?P<url>.*)$": Rule(staff(404, 404, 404)),
        "admin/surveys/formversion/upload/": Rule(staff(403, "ok", "ok")),
        # The web form in preview: staff who may see the version (their survey's).
        "admin/surveys/formversion/<int:pk>/preview/": Rule(ALL_STAFF),
        # A batch of links just created: its survey's administrators (links are not for
        # supervisors).
        "admin/surveys/invitationlink/batch/<int:event_id>/": Rule(staff(403, "ok", "ok")),
        "admin/surveys/invitationlink/batch/<int:event_id>/csv/": Rule(staff(403, "ok", "ok")),
        "admin/audit/auditevent/export.csv": Rule(staff(403, 403, "ok")),
    }
)


def _admin_auth_holder(codename: str) -> set[str]:
    """Users and groups: whatever the admin group's `auth` permissions allow (only
    superusers may grant roles or permissions: those permissions are being withdrawn)."""
    group = Group.objects.get(name="admin")
    return {"admin"} if group.permissions.filter(codename=codename).exists() else set()


# Who may open each admin model's pages (staff roles only; the others meet the login page):
# view (list, object page, history), add, change, delete. An object page is readable with
# the view permission alone, so "view" covers the change page too.
ADMIN_MODELS: dict[str, dict[str, Callable[[], set[str]] | set[str]]] = {
    "auth.group": {
        action: (lambda a=action: _admin_auth_holder(f"{a}_group") | {"superuser"})
        for action in ("view", "add", "change", "delete")
    },
    "auth.user": {
        action: (lambda a=action: _admin_auth_holder(f"{a}_user") | {"superuser"})
        for action in ("view", "add", "change", "delete")
    },
    # Hashed API tokens, seen by prefix and revoked (a change); made by their owner only.
    "apitokens.apitoken": {
        "view": {"admin", "superuser"},
        "add": set(),
        "change": {"admin", "superuser"},
        "delete": {"admin", "superuser"},
    },
    # Login lockouts: administrators may look at them and lift them (delete).
    "axes.accessattempt": {
        "view": {"admin", "superuser"},
        "add": set(),
        "change": set(),
        "delete": {"admin", "superuser"},
    },
    "axes.accesslog": {
        "view": {"admin", "superuser"},
        "add": set(),
        "change": set(),
        "delete": {"admin", "superuser"},
    },
    "axes.accessfailurelog": {
        "view": {"admin", "superuser"},
        "add": set(),
        "change": set(),
        "delete": {"admin", "superuser"},
    },
    # The tablet channel's records are not narrowed to surveys in the admin: superusers
    # only (supervisors work on /review/, /odk/devices/ and /collect/enrolment-code/).
    "collect.device": {
        "view": {"superuser"},
        "add": set(),  # tablets enrol themselves
        "change": {"superuser"},
        "delete": {"superuser"},
    },
    "collect.enrolmentcode": {
        "view": {"superuser"},
        "add": set(),  # made on the supervisor's page, shown once
        "change": {"superuser"},
        "delete": {"superuser"},
    },
    "collect.assignment": dict.fromkeys(("view", "add", "change", "delete"), {"superuser"}),
    "collect.collectsettings": dict.fromkeys(("view", "add", "change", "delete"), {"superuser"}),
    "collect.tabletinterview": {
        "view": {"superuser"},
        "add": set(),  # through the sync service only
        "change": set(),
        "delete": {"superuser"},
    },
    "surveys.survey": {
        "view": {"admin", "superuser"},
        "add": {"superuser"},  # a new survey needs an administrator of every survey
        "change": {"admin", "superuser"},
        "delete": {"admin", "superuser"},
    },
    "surveys.formversion": {
        "view": {"supervisor", "admin", "superuser"},
        "add": set(),  # from an XLSForm upload only
        "change": set(),  # immutable
        "delete": {"admin", "superuser"},
    },
    "surveys.wave": {
        "view": {"supervisor", "admin", "superuser"},
        "add": {"admin", "superuser"},
        "change": {"admin", "superuser"},
        "delete": {"admin", "superuser"},
    },
    "surveys.region": dict.fromkeys(("view", "add", "change", "delete"), {"admin", "superuser"}),
    "surveys.submission": {
        "view": {"supervisor", "admin", "superuser"},
        "add": set(),  # through the submission service only
        "change": {"supervisor", "admin", "superuser"},
        "delete": {"admin", "superuser"},
    },
    "surveys.invitationlink": {
        "view": {"admin", "superuser"},
        "add": {"admin", "superuser"},
        "change": {"admin", "superuser"},
        "delete": set(),  # revoked, never deleted
    },
    "analytics.populationmargins": {
        "view": {"admin", "superuser"},
        "add": {"admin", "superuser"},
        "change": set(),
        "delete": {"admin", "superuser"},
    },
    "analytics.wavecomputation": {
        "view": {"admin", "superuser"},
        "add": set(),
        "change": {"admin", "superuser"},
        "delete": {"admin", "superuser"},
    },
    "analytics.resultset": {
        "view": {"admin", "superuser"},
        "add": set(),
        "change": set(),
        "delete": {"admin", "superuser"},
    },
    "audit.auditevent": {
        "view": {"superuser"},
        "add": set(),
        "change": set(),
        "delete": set(),  # append-only
    },
    "access.rolegrant": dict.fromkeys(("view", "add", "change", "delete"), {"superuser"}),
}


# Lists narrowed to administrators' surveys: a supervisor does not find the object at all,
# and the admin's history page looks the object up before it checks the permission.
HIDDEN_FROM_SUPERVISORS = {
    "surveys.invitationlink",
    "analytics.populationmargins",
    "analytics.wavecomputation",
    "analytics.resultset",
}


def _admin_model_rules() -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for label, actions in ADMIN_MODELS.items():
        allowed = {a: (who() if callable(who) else who) for a, who in actions.items()}
        readers = allowed["view"] | allowed["change"]

        def expect(who: set[str], *, hidden: Outcome = 403) -> dict[str, Outcome]:
            return staff(*("ok" if role in who else hidden for role in STAFF))

        base = f"admin/{label.replace('.', '/')}/"
        rules[base] = Rule(expect(readers))
        rules[f"{base}add/"] = Rule(expect(allowed["add"]))
        hidden = "redirect" if label in HIDDEN_FROM_SUPERVISORS else 403
        rules[f"{base}<path:object_id>/history/"] = Rule(expect(readers, hidden=hidden))
        rules[f"{base}<path:object_id>/delete/"] = Rule(expect(allowed["delete"]))
        rules[f"{base}<path:object_id>/change/"] = Rule(expect(readers))
        rules[f"{base}<path:object_id>/"] = Rule(staff("redirect", "redirect", "redirect"))
    rules["admin/auth/user/<id>/password/"] = Rule(
        staff(403, *("ok" if r in ADMIN_MODELS_CHANGE_USER() else 403 for r in STAFF[1:]))
    )
    return rules


def ADMIN_MODELS_CHANGE_USER() -> set[str]:  # noqa: N802
    return _admin_auth_holder("change_user") | {"superuser"}


# API operations, from the schema: "METHOD path".
API_RULES: dict[str, Rule] = {
    "GET /api/comparison/": Rule(API_ESTIMATES),
    "GET /api/comparison/download/": Rule(
        API_OF_A_NAMED, query=lambda w: {"file_format": "csv", "wave": w.wave_a.pk}
    ),
    "POST /api/token/": Rule(row(400, 400, *["ok"] * 7)),
    "GET /api/surveys/": Rule(API_ESTIMATES),
    "GET /api/surveys/{id}/": Rule(API_OF_A),
    "GET /api/waves/": Rule(API_ESTIMATES),
    "GET /api/waves/{id}/": Rule(API_OF_A),
    "GET /api/regions/": Rule(API_ESTIMATES),
    "GET /api/regions/{id}/": Rule(API_ESTIMATES),
    "GET /api/form-versions/": Rule(API_ESTIMATES),
    "GET /api/form-versions/{id}/": Rule(API_OF_A),
    "GET /api/estimates/": Rule(API_ESTIMATES),
    "GET /api/estimates/{id}/": Rule(API_OF_A),
    "GET /api/breakdown-estimates/": Rule(API_ESTIMATES),
    "GET /api/breakdown-estimates/{id}/": Rule(API_OF_A),
    "GET /api/breakdown-estimates/download/": Rule(
        API_ESTIMATES, query=lambda w: {"file_format": "csv"}
    ),
    "GET /api/export-jobs/": Rule(API_ESTIMATES),
    "POST /api/export-jobs/": Rule(
        row(401, 401, 403, 403, 403, "ok", 403, "ok", "ok"),
        data=lambda w: {"kind": "microdata", "waves": [w.wave_a.pk], **MICRODATA_BODY},
    ),
    "GET /api/export-jobs/{id}/": Rule(API_OWN_JOB),
    "GET /api/export-jobs/{id}/download/": Rule(API_OWN_JOB),
    # Only a failed job can be retried: the owner of a finished one gets 400.
    "POST /api/export-jobs/{id}/retry/": Rule(row(401, 401, 403, 404, 404, 400, 404, 404, 404)),
    # The tablets: an account's session or API token is no device (see DEVICE_ONLY).
    "GET /api/collect/assignments/": Rule(DEVICE_ONLY),
    "GET /api/collect/form-versions/{id}/": Rule(DEVICE_ONLY),
    "GET /api/collect/returned/": Rule(DEVICE_ONLY),
    "POST /api/collect/sync/": Rule(DEVICE_ONLY, data=lambda w: {"interviews": []}),
    # Enrolling a tablet: someone who collects interviews in a survey (an enumerator's or a
    # supervisor's grant); a superuser too.
    "POST /api/collect/devices/": Rule(
        row(400, 400, "ok", "ok", 403, 403, 403, 403, "ok"), data=lambda w: {"label": "matrix"}
    ),
    # A supervisor's or an admin's: for the enumerators and devices of their surveys.
    "POST /api/collect/devices/{id}/revoke/": Rule(API_REVIEWERS),
    "POST /api/collect/enrolment-codes/": Rule(
        API_REVIEWERS, data=lambda w: {"enumerator": "enumerator"}
    ),
    # A CSV file in a multipart body only: the JSON body here is refused.
    "POST /api/collect/assignments/upload/": Rule(row(401, 401, 403, 415, 403, 403, 403, 415, 415)),
}


# --------------------------------------------------------------------------- enumeration


def url_patterns(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[str]:
    """Every URL pattern of the site as its full route, the admin's and the API's included."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from url_patterns(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def api_operations(client: Client) -> list[str]:
    schema = client.get("/api/schema/", {"format": "json"}, HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    return [f"{method.upper()} {path}" for path, ops in paths.items() for method in ops]


def all_url_rules() -> dict[str, Rule]:
    return {**URL_RULES, **_admin_model_rules()}


def _pk_for(path: str, world: World) -> int:
    for segment, value in (
        # An admin route names its app ("admin/surveys/formversion/..."): the model first.
        ("formversion", lambda: world.wave_a.form_version_id),
        ("surveys", lambda: world.survey_a.pk),
        ("waves", lambda: world.wave_a.pk),
        ("regions", lambda: world.region_a.pk),
        ("form-versions", lambda: world.wave_a.form_version_id),
        (
            "breakdown-estimates",
            lambda: BreakdownEstimate.objects.filter(wave=world.wave_a).first().pk,
        ),
        ("estimates", lambda: IndicatorEstimate.objects.filter(wave=world.wave_a).first().pk),
        ("export-jobs", lambda: world.job.pk),
        ("exports", lambda: world.job.pk),
        ("devices", lambda: world.device.pk),
        ("form", lambda: world.wave_a.form_version_id),
    ):
        if f"{segment}/" in path or f"^{segment}" in path:
            return value()
    raise AssertionError(f"no object for {path}")


def _params(route: str, world: World, role: str) -> dict[str, Any]:
    from django.contrib.contenttypes.models import ContentType

    label = next((lab for lab in ADMIN_MODELS if f"admin/{lab.replace('.', '/')}/" in route), None)
    obj = world.objects.get(label) if label else None
    return {
        "token": world.link.token if role == "respondent" else "NotAnyonesLinkToken0000000000000",
        "file_format": "csv",
        "format": "json",
        "app_label": "surveys",
        "url": "no-such-page/",
        "object_id": obj.pk if obj is not None else "",
        "id": world.users["enumerator"].pk,
        "content_type_id": ContentType.objects.get_for_model(world.survey_a).pk,
        "object_id_site": world.survey_a.pk,
        "version_id": world.wave_a.form_version_id,
        "instance_id": world.interview_a.instance_id,
        "name": world.attachment.name,
        "event_id": _links_created(world),
    }


def _links_created(world: World) -> int:
    """The audit event of the world's batch of links (its link to survey A)."""
    from audit.models import AuditAction, AuditEvent

    return next(
        event.pk
        for event in AuditEvent.objects.filter(action=AuditAction.LINKS_CREATED)
        if world.link.pk in event.detail.get("ids", [])
    )


def fill(route: str, world: World, role: str) -> str:
    """A concrete path for a route: its parameters from the world, for this role."""
    params = _params(route, world, role)
    if route.startswith("admin/r/"):
        params["object_id"] = params["object_id_site"]
    if re.search(r"<(?:\w+:)?pk>|\(\?P<pk>", route):
        params["pk"] = _pk_for(route, world)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(params[m.group(1)]), route)
    path = path.replace("<drf_format_suffix:format>", ".json")
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(params[m.group(1)]), path)
    path = path.replace("^", "").replace("$", "").replace("/?", "").replace("\\.", ".")
    return "/" + path


def outcome(response: Any) -> Outcome:
    code = response.status_code
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)  # read to the end: the test client then closes it
    if 300 <= code < 400:
        where = urlsplit(response["Location"]).path
        return "login" if where in LOGIN_PATHS else "redirect"
    return "ok" if 200 <= code < 300 else code


# --------------------------------------------------------------------------------- tests


def undeclared(client: Client) -> list[str]:
    """URL patterns and API operations with no rule in the table."""
    rules = all_url_rules()
    patterns = list(url_patterns())
    assert len(set(patterns)) == len(patterns)
    missing = [f"URL pattern {p!r}" for p in patterns if p not in rules]
    return missing + [op for op in api_operations(client) if op not in API_RULES]


def test_every_url_pattern_and_api_operation_has_a_rule(client):
    missing = undeclared(client)
    assert not missing, "no access rule declared in tests/access/test_matrix.py for " + ", ".join(
        missing
    )
    patterns, operations = set(url_patterns()), set(api_operations(client))
    stale = sorted(set(all_url_rules()) - patterns) + sorted(set(API_RULES) - operations)
    assert not stale, f"rules for endpoints that no longer exist: {stale}"


urlpatterns = [
    *get_resolver().url_patterns,
    path("analytics/new-report/", lambda request: HttpResponse("numbers"), name="new-report"),
]


@pytest.mark.urls(__name__)
def test_an_endpoint_without_a_rule_is_named(client):
    assert undeclared(client) == ["URL pattern 'analytics/new-report/'"]


def _login(client: Any, world: World, role: str) -> None:
    if role in ("anonymous", "respondent"):
        client.logout()
    else:
        client.force_login(world.users[role])


def _call(client: Any, rule: Rule, path: str, world: World, *, api: bool) -> Any:
    query = rule.query(world) if rule.query else {}
    data = rule.data(world) if rule.data else {}
    if rule.method == "get":
        return client.get(path, query)
    if api:
        return client.post(path, data, format="json")
    return client.post(path, data)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_meets_the_declared_rule_everywhere(role, django_capture_on_commit_callbacks):
    world = build_world()
    rules = all_url_rules()
    wrong: list[str] = []
    checked = 0
    client = Client()
    for route in url_patterns():
        rule = rules[route]
        path = fill(route, world, role)
        _login(client, world, role)
        with django_capture_on_commit_callbacks(execute=False):
            got = outcome(_call(client, rule, path, world, api=False))
        checked += 1
        if got != rule.expect[role]:
            wrong.append(
                f"{rule.method.upper()} {path} ({route}): {got}, expected {rule.expect[role]}"
            )
    api = APIClient()
    for operation in api_operations(Client()):
        method, template = operation.split(" ", 1)
        rule = API_RULES[operation]
        path = (
            template.replace("{id}", str(_pk_for(template, world)))
            if "{id}" in template
            else template
        )
        api.force_authenticate(None if role in ("anonymous", "respondent") else world.users[role])
        if operation == "POST /api/token/":
            name = "nobody" if role in ("anonymous", "respondent") else world.users[role].username
            rule = Rule(
                rule.expect,
                method="post",
                data=lambda w, n=name: {"username": n, "password": PASSWORD},
            )
        elif method == "POST":
            rule = Rule(rule.expect, method="post", query=rule.query, data=rule.data)
        with django_capture_on_commit_callbacks(execute=False):
            got = outcome(_call(api, rule, path, world, api=True))
        checked += 1
        if got != rule.expect[role]:
            wrong.append(f"{operation} ({path}): {got}, expected {rule.expect[role]}")
    assert checked == len(rules) + len(API_RULES)
    assert not wrong, (
        f"{role}: {len(wrong)} of {checked} endpoints differ from the table:\n" + "\n".join(wrong)
    )
