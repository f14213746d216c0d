"""Repeats (rosters) in the web questionnaire: server pages, plain HTML, and in Chromium."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from surveys.models import Submission
from surveys.services import create_links, import_xlsform, open_wave
from surveys.webform import build_pages, posted_answers
from tests.sources import XLSFORMS
from tests.surveys.webform_fixtures import ROSTER_SURVEY, public_link, roster_wave

UCL_FORM = XLSFORMS / "UCL_Biomass_Plot_Form.xlsx"


def form_post(**answers: str) -> dict[str, str]:
    return {"_language": "en", "_instance_id": str(uuid.uuid4()), "REGION": "KZ-75", **answers}


def field(name: str) -> str:
    """An attribute selector for a field named with its entry (brackets need no escaping)."""
    return f'[name="{name}"]'


# --------------------------------------------------------------------------- server


@pytest.mark.django_db
def test_repeat_questions_are_in_the_page_with_one_blank_entry(client):
    link = public_link(roster_wave())
    html = client.get(f"/s/{link.token}/?lang=ru").content.decode()
    assert '<h3 class="repeat-title" tabindex="-1">Члены семьи</h3>' in html
    assert '<label class="label" for="f-member[1].first_name">Имя' in html
    assert 'name="member[1].age"' in html and 'name="member[2].age"' not in html
    assert "Запись 1" in html and "Добавить ещё" in html and "Удалить" in html
    # The counted repeat has no entry until its count is known; its blank entry is a template.
    assert 'name="child[1].child_name"' not in html
    assert '<template data-template="child" data-key="child">' in html
    assert 'name="child[0].child_name"' in html
    kk = client.get(f"/s/{link.token}/?lang=kk").content.decode()
    assert "1-жазба" in kk and "Тағы қосу" in kk and "Өшіру" in kk
    config = json.loads(
        re.search(r'id="tanys-config" type="application/json">(.*?)</script>', kk).group(1)
    )
    assert config["messages"]["entry"] == "%(number)s-жазба"
    assert config["logic"]["nodes"][4]["rc"] == ["ref", "n_children"]


@pytest.mark.django_db
def test_plain_html_post_stores_the_entries_as_a_list(client):
    link = public_link(roster_wave())
    form = form_post(
        **{
            "n_children": "1",
            "member[1].first_name": "Aigerim",
            "member[1].age": "34",
            "member[1].works": "1",
            "member[2].first_name": "Daulet",
            "member[2].age": "9",
            "member[3].first_name": "",  # the blank entry the page offered
            "member[3].age": "",
            "child[1].child_name": "Daulet",
        }
    )
    response = client.post(f"/s/{link.token}/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    answers = Submission.objects.get().answers
    assert answers["member"] == [
        {"first_name": "Aigerim", "age": 34, "works": 1},
        {"first_name": "Daulet", "age": 9, "works": -3},  # not asked under 18
    ]
    assert answers["child"] == [{"child_name": "Daulet"}]


@pytest.mark.django_db
def test_plain_html_error_in_entry_two_comes_back_next_to_it(client):
    link = public_link(roster_wave())
    form = form_post(
        **{
            "member[1].first_name": "Aigerim",
            "member[1].age": "34",
            "member[1].works": "2",
            "member[2].first_name": "Daulet",
            "member[2].age": "250",
        }
    )
    response = client.post(f"/s/{link.token}/", form)
    assert response.status_code == 400
    html = response.content.decode()
    assert (
        '<p class="err" id="e-member[2].age">This answer is not accepted; please check it.</p>'
        in html
    )
    assert '<p class="err" id="e-member[1].age"></p>' in html
    assert (
        'name="member[2].age" type="text" inputmode="numeric" autocomplete="off" value="250"'
        in html
    )
    assert 'name="member[1].works" value="2" checked' in html
    assert 'name="member[3].first_name"' in html  # and a blank entry to add one more
    assert Submission.objects.count() == 0


@pytest.mark.django_db
def test_plain_html_add_another_shows_a_new_entry_and_stores_nothing(client):
    link = public_link(roster_wave())
    form = form_post(**{"member[1].first_name": "Aigerim", "member[1].age": "34", "_add": "member"})
    response = client.post(f"/s/{link.token}/", form)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="Aigerim"' in html
    assert 'name="member[2].first_name"' in html and 'name="member[3].first_name"' not in html
    assert Submission.objects.count() == 0


@pytest.mark.django_db
def test_plain_html_counted_repeat_follows_the_posted_count(client):
    link = public_link(roster_wave())
    response = client.post(f"/s/{link.token}/", form_post(n_children="2"))
    assert response.status_code == 400
    html = response.content.decode()
    assert 'name="child[2].child_name"' in html and 'name="child[3].child_name"' not in html
    assert '<p class="err" id="e-child[1].child_name">This question requires an answer.</p>' in html
    assert Submission.objects.count() == 0


def test_posted_answers_parse_nested_entries_and_counts():
    from django.http import QueryDict

    definition = {
        "choices": {},
        "children": [
            {"kind": "question", "type": "integer", "name": "n"},
            {
                "kind": "repeat",
                "type": "repeat",
                "name": "trees",
                "children": [
                    {"kind": "question", "type": "integer", "name": "stem_count"},
                    {
                        "kind": "repeat",
                        "type": "repeat",
                        "name": "stems",
                        "repeat_count": ["ref", "stem_count"],
                        "children": [{"kind": "question", "type": "decimal", "name": "cbh"}],
                    },
                ],
            },
        ],
    }
    post = QueryDict(mutable=True)
    post.update({"n": "1", "trees[1].stem_count": "2", "trees[1].stems[1].cbh": "31.5"})
    post.update({"trees[3].stem_count": "1", "trees[3].stems[1].cbh": "12"})
    post.update({"trees[3].stems[2].cbh": "99"})  # beyond the count of its tree
    assert posted_answers(post, definition) == {
        "n": "1",
        "trees": [
            {"stem_count": "2", "stems": [{"cbh": "31.5"}, {}]},
            {"stem_count": "1", "stems": [{"cbh": "12"}]},
        ],
    }


@pytest.mark.django_db
def test_json_count_mismatch_is_reported_for_the_section(client):
    link = public_link(roster_wave())
    response = client.post(
        f"/s/{link.token}/",
        json.dumps(
            {
                "instance_id": str(uuid.uuid4()),
                "answers": {"REGION": "KZ-75", "n_children": "2", "child": []},
            }
        ),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"child": ["This section needs 2 entries."]}


@pytest.mark.django_db
def test_a_repeat_is_its_own_page_or_part_of_its_field_list_page():
    survey = [
        ROSTER_SURVEY[0],
        *ROSTER_SURVEY[1:3],
        ["begin_group", "hh", "Үй", "Дом", "Household", "", "", "", "", "", "field-list"],
        ["integer", "rooms", "Бөлмелер", "Комнаты", "Rooms"],
        *ROSTER_SURVEY[4:9],
        ["end_group", "hh"],
        ROSTER_SURVEY[3],
        *ROSTER_SURVEY[9:],
    ]
    survey[0] = [*ROSTER_SURVEY[0], "appearance"]
    wave = roster_wave(survey=survey)
    pages = build_pages(wave.form_version.definition, "en")
    assert [p.title for p in pages] == ["", "Household", "", ""]
    household, count, children = pages[1:]
    assert [i.name for i in household.items] == ["rooms", "member"]
    roster = household.items[1]
    assert roster.is_repeat and [e.number for e in roster.entries] == [1]
    assert [i.name for i in roster.entries[0].items] == [
        "member[1].first_name",
        "member[1].age",
        "member[1].works",
    ]
    assert [i.name for i in count.items] == ["n_children"]
    assert children.items[0].is_repeat and children.items[0].entries == []
    with_count = build_pages(wave.form_version.definition, "en", {"n_children": "3"})
    assert [e.number for e in with_count[3].items[0].entries] == [1, 2, 3]


@pytest.mark.django_db
def test_the_ucl_form_shows_its_repeat_questions(client):
    html = client.get(ucl_link()).content.decode()
    assert 'data-repeat="trees"' in html
    assert 'name="trees[1].tag"' in html  # "Tag Numba ya Mti"
    assert "Tag Numba ya Mti" in html
    # The nested repeat, counted by stem_count, is drawn from its blank entry.
    assert '<template data-template="trees.stems" data-key="trees[0].stems">' in html
    assert 'name="trees[0].stems[0].cbh"' in html


def ucl_link() -> str:
    version, _ = import_xlsform(
        survey_code="ucl-biomass", content=UCL_FORM.read_bytes(), filename=UCL_FORM.name
    )
    wave = open_wave(survey=version.survey, code="W1", geography="KZ2022", form_version=version)
    return f"/s/{create_links(wave=wave, kind='public', count=1)[0].token}/"


# --------------------------------------------------------------------------- browser


def open_form(page, live_server, link, errors: list[str]) -> None:
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/s/{link.token}/?lang=en", wait_until="networkidle")
    page.locator("#next").click()  # past the start page


def draft(page, token: str) -> dict:
    return json.loads(page.evaluate(f"localStorage.getItem('tanys:{token}')"))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_respondent_adds_and_removes_entries_and_sends_the_list(page, live_server):
    link = public_link(roster_wave())
    errors: list[str] = []
    open_form(page, live_server, link, errors)
    roster = page.locator('[data-repeat="member"]')
    # Without an entry yet: the page's blank entry gives way to the entries answered.
    assert roster.locator(".entry").count() == 0
    page.fill(field("REGION"), "KZ-75")
    add = roster.locator("[data-add]")
    for _ in range(3):
        add.click()
    assert roster.locator(".entry-title").all_inner_texts() == ["Entry 1", "Entry 2", "Entry 3"]
    assert page.evaluate("document.activeElement.name") == "member[3].first_name"
    page.fill(field("member[1].first_name"), "Aigerim")
    page.fill(field("member[1].age"), "34")
    page.fill(field("member[2].first_name"), "Mistake")
    page.fill(field("member[3].first_name"), "Daulet")
    page.fill(field("member[3].age"), "9")
    # "Works?" is asked only of adults, in each entry on its own.
    assert page.locator('[data-q="member[1].works"]').is_visible()
    assert page.locator('[data-q="member[3].works"]').is_hidden()
    page.locator('.entry[data-entry="2"] [data-remove]').click()
    assert roster.locator(".entry").count() == 2
    assert page.input_value(field("member[2].first_name")) == "Daulet"
    assert page.input_value(field("member[2].age")) == "9"
    assert page.locator('[data-q="member[2].works"]').is_hidden()
    page.locator('input[name="member[1].works"][value="1"]').check()
    page.locator("#submit").click()
    page.wait_for_url("**/thanks/**")
    answers = Submission.objects.get().answers
    assert answers["member"] == [
        {"first_name": "Aigerim", "age": 34, "works": 1},
        {"first_name": "Daulet", "age": 9, "works": -3},
    ]
    assert answers["child"] == []
    assert errors == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_counted_repeat_follows_the_count_and_the_draft_survives_a_reload(page, live_server):
    link = public_link(roster_wave())
    errors: list[str] = []
    open_form(page, live_server, link, errors)
    children = page.locator('[data-repeat="child"]')
    assert children.locator(".entry:visible").count() == 0
    assert children.locator("[data-add]").count() == 0  # the count decides
    page.fill(field("n_children"), "3")
    assert children.locator(".entry:visible").count() == 3
    assert children.locator("[data-remove]:visible").count() == 0
    page.fill(field("child[1].child_name"), "Aru")
    page.fill(field("child[2].child_name"), "Bolat")
    page.fill(field("n_children"), "2")
    assert children.locator(".entry").count() == 2
    assert children.locator(".removed").inner_text() == ""  # the entry dropped was blank
    page.fill(field("n_children"), "1")
    assert children.locator(".entry").count() == 1
    assert "removed" in children.locator(".removed").inner_text()
    page.fill(field("n_children"), "2")
    page.fill(field("child[2].child_name"), "Kairat")
    page.locator('[data-repeat="member"] [data-add]').click()
    page.fill(field("member[1].first_name"), "Aigerim")
    page.fill(field("member[1].age"), "40")

    page.reload(wait_until="networkidle")
    assert page.input_value(field("child[1].child_name")) == "Aru"
    assert page.input_value(field("child[2].child_name")) == "Kairat"
    assert page.input_value(field("member[1].age")) == "40"
    assert page.locator('[data-q="member[1].works"]').is_visible()
    assert page.locator('[data-repeat="member"] .entry').count() == 1
    assert draft(page, link.token)["answers"]["child"] == [
        {"child_name": "Aru"},
        {"child_name": "Kairat"},
    ]
    # Submitting with a required answer missing in entry 1 points at it.
    page.fill(field("REGION"), "KZ-75")
    page.locator("#submit").click()
    assert "Entry 1: Works?" in page.locator("#summary").inner_text()
    assert page.evaluate("document.activeElement.name") == "member[1].works"
    page.locator('input[name="member[1].works"][value="2"]').check()
    page.locator("#submit").click()
    page.wait_for_url("**/thanks/**")
    answers = Submission.objects.get().answers
    assert answers["n_children"] == 2
    assert answers["child"] == [{"child_name": "Aru"}, {"child_name": "Kairat"}]
    assert answers["member"] == [{"first_name": "Aigerim", "age": 40, "works": 2}]
    assert errors == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_server_error_in_an_entry_shows_next_to_that_entrys_question(page, live_server):
    link = public_link(roster_wave())
    page.goto(f"{live_server.url}/s/{link.token}/?lang=en", wait_until="networkidle")
    state = {
        "id": str(uuid.uuid4()),
        "page": 1,
        "lang": "en",
        "started": None,
        "answers": {
            "REGION": "KZ-75",
            "member": [
                {"first_name": "Aigerim", "age": "34", "works": "1"},
                # A code the form does not offer (a stale page): only the server sees it.
                {"first_name": "Daulet", "age": "30", "works": "7"},
            ],
        },
    }
    page.evaluate(f"localStorage.setItem('tanys:{link.token}', {json.dumps(json.dumps(state))})")
    page.reload(wait_until="networkidle")
    page.locator("#submit").click()
    message = page.locator('[id="e-member[2].works"]')
    message.filter(has_text="Choose one of the options offered.").wait_for()
    assert page.locator('[id="e-member[1].works"]').inner_text() == ""
    assert "Entry 2: Works?" in page.locator("#summary").inner_text()
    assert Submission.objects.count() == 0


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_ucl_nested_repeats_are_drawn_added_and_kept(page, live_server):
    """The UCL biomass form: trees, each with as many stems as its stem count."""
    errors: list[str] = []
    path = ucl_link()
    token = path.split("/")[2]
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server.url + path, wait_until="networkidle")
    trees_page = page.locator('section.page:has([data-repeat="trees"])').get_attribute("data-page")
    state = {
        "id": str(uuid.uuid4()),
        "page": int(trees_page),
        "lang": "en",
        "started": None,
        "answers": {"any_trees": "yes", "trees": [{"tag": "5", "stem_count": "2"}]},
    }
    page.evaluate(f"localStorage.setItem('tanys:{token}', {json.dumps(json.dumps(state))})")
    page.reload(wait_until="networkidle")
    trees = page.locator('[data-repeat="trees"]')
    assert trees.is_visible()
    assert page.input_value(field("trees[1].tag")) == "5"
    stems = page.locator('[data-repeat="trees[1].stems"] .entry')
    assert stems.count() == 2 and stems.nth(1).is_visible()
    page.fill(field("trees[1].stems[2].cbh"), "31.5")
    trees.locator(":scope > [data-add]").click()
    page.fill(field("trees[2].stem_count"), "1")
    assert page.locator('[data-repeat="trees[2].stems"] .entry').count() == 1
    page.fill(field("trees[2].stems[1].cbh"), "12")
    kept = draft(page, token)["answers"]["trees"]
    assert kept[0]["stems"][1]["cbh"] == "31.5"
    assert kept[1]["stems"] == [{"cbh": "12"}]
    page.reload(wait_until="networkidle")
    assert page.input_value(field("trees[2].stems[1].cbh")) == "12"
    trees.locator('.entry[data-entry="1"] > [data-remove]').click()
    assert page.input_value(field("trees[1].stems[1].cbh")) == "12"
    assert draft(page, token)["answers"]["trees"] == [{"stem_count": "1", "stems": [{"cbh": "12"}]}]
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_enter_in_a_field_without_javascript_sends_the_answers(browser, live_server):
    """Enter presses the form's first submit button: Submit, not a roster's Add another."""
    link = public_link(roster_wave())
    context = browser.new_context(java_script_enabled=False, locale="en-US")
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/s/{link.token}/?lang=en")
        page.fill(field("REGION"), "KZ-75")
        page.fill(field("n_children"), "0")
        page.fill(field("member[1].first_name"), "Aigerim")
        page.fill(field("member[1].age"), "12")
        page.press(field("member[1].age"), "Enter")
        page.wait_for_url("**/thanks/**")
    finally:
        context.close()
    stored = Submission.objects.get(wave=link.wave)
    assert stored.answers["member"] == [{"first_name": "Aigerim", "age": 12, "works": -3}]
