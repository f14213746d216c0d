"""A form version's admin page: a readable outline instead of the compiled JSON, and the
web form in a preview whose answers are checked but never stored or counted."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from surveys.expression_syntax import compile_expression, expression_text
from surveys.formtree import iter_nodes
from surveys.models import InvitationLink, Submission
from surveys.outline import form_outline
from tests.surveys.webform_fixtures import complete_answers, instrument_version

pytestmark = pytest.mark.django_db
WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture
def version():
    return instrument_version()


def _preview_url(version) -> str:
    return reverse("admin:surveys_formversion_preview", args=[version.pk])


def _stored() -> tuple[int, int, int]:
    return Submission.objects.count(), AuditEvent.objects.count(), InvitationLink.objects.count()


def test_every_expression_of_the_instrument_reads_back_as_itself(version):
    seen = 0
    for node in iter_nodes(version.definition):
        for key in ("relevant", "constraint", "calculation"):
            if node.get(key):
                assert compile_expression(expression_text(node[key])) == node[key]
                seen += 1
    assert seen > 20


def test_the_outline_lists_every_node_with_its_logic(version):
    rows = {row.name: row for row in form_outline(version.definition)}
    assert rows["g_design"].role == "group" and rows["REGION"].depth == 1
    assert rows["M"].type == "select_multiple" and rows["M"].choices == 7
    assert rows["M"].relevant == "${E1} = 1 or ${E1} = 2 or ${E2} = 1 or ${E2} = 2 or ${E2} = 3"
    assert rows["HH_SIZE"].constraint == ". >= 1 and . <= 30"
    assert rows["AGE"].calculation == "int(format-date(today(), '%Y')) - ${BIRTH_YEAR}"
    assert rows["SEX"].required == "yes" and set(rows["SEX"].labels) == {"kk", "ru", "en"}


def test_the_version_page_is_an_outline_not_json(admin_client, version):
    response = admin_client.get(reverse("admin:surveys_formversion_change", args=[version.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert '"children"' not in html and "&quot;children&quot;" not in html
    assert "${E1} = 1 or ${E1} = 2" in html
    question = version.questions["P1"]["label"]
    for language in ("kk", "ru", "en"):
        assert f'<div lang="{language}"><small>{language}</small> {question[language][:40]}' in html
    assert _preview_url(version) in html
    # About a tenth of what the JSON took.
    assert len(html) < len(json.dumps(version.definition, ensure_ascii=False))


def test_the_preview_shows_the_form_with_a_banner_in_three_languages(admin_client, version):
    response = admin_client.get(_preview_url(version) + "?lang=ru")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="tanys-form"' in html and "surveys/preview.js" in html
    assert "Preview — answers are not saved" in html
    assert "Предпросмотр — ответы не сохраняются" in html
    assert "Алдын ала қарау — жауаптар сақталмайды" in html
    config = json.loads(html.split('id="tanys-config" type="application/json">')[1].split("<")[0])
    assert config["serviceWorker"] == "" and config["preview"]["checkUrl"] == _preview_url(version)


def test_a_finished_preview_is_checked_and_nothing_is_stored(admin_client, version):
    before = _stored()
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(
            _preview_url(version),
            {"language": "en", "answers": complete_answers()},
            content_type="application/json",
        )
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == "valid"
    assert "The answers are valid. Nothing was stored." in body["html"]
    assert "KZ-75 = Almaty" in body["html"]
    assert _stored() == before
    assert not [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]


def test_a_wrong_preview_shows_its_errors_and_stores_nothing(admin_client, version):
    before = _stored()
    response = admin_client.post(
        _preview_url(version),
        {"language": "ru", "answers": complete_answers(HH_SIZE="99", SEX=None)},
        content_type="application/json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "answers" and {"HH_SIZE", "SEX"} <= set(body["errors"])
    assert _stored() == before


def test_the_preview_without_javascript_checks_and_stores_nothing(admin_client, version):
    before = _stored()
    posted = {**complete_answers(), "_language": "kk"}
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(_preview_url(version), posted)
    assert response.status_code == 200
    assert "Алдын ала қарау — жауаптар сақталмайды" in response.content.decode()
    wrong = admin_client.post(_preview_url(version), {**posted, "HH_SIZE": "99"})
    assert wrong.status_code == 400 and 'id="tanys-form"' in wrong.content.decode()
    assert _stored() == before
    assert not [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]


def test_the_preview_is_for_staff_of_the_survey_only(client, version):
    from tests.access.access_world import build_world

    world = build_world()
    url = _preview_url(version)
    assert client.get(url).status_code == 302  # to the admin's sign-in
    client.force_login(world.users["researcher_microdata"])  # not staff
    assert client.get(url).status_code == 302
    client.force_login(world.users["admin"])  # staff, administers another survey
    assert client.get(url).status_code == 404
    own = world.wave_a.form_version
    assert client.get(_preview_url(own)).status_code == 200
    page = client.get(reverse("admin:surveys_formversion_change", args=[own.pk]))
    assert page.status_code == 200 and _preview_url(own) in page.content.decode()
