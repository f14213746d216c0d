"""The web questionnaire's server side: language, JSON and plain-HTML submission, page weight."""

from __future__ import annotations

import gzip
import json
import re
import uuid

import pytest
from django.contrib.staticfiles import finders

from surveys.models import Submission
from surveys.webform import build_pages, closing_notes, user_agent_class
from tests.surveys.webform_fixtures import complete_answers, instrument_wave, public_link

pytestmark = pytest.mark.django_db

PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36"
)


@pytest.fixture
def link():
    return public_link(instrument_wave())


def post_json(client, link, payload, **headers):
    return client.post(
        f"/s/{link.token}/", json.dumps(payload), content_type="application/json", **headers
    )


def payload(**changes):
    body = {"instance_id": str(uuid.uuid4()), "language": "kk", "answers": complete_answers()}
    body.update(changes)
    return body


def test_form_opens_in_the_forms_default_language_not_the_browsers(client, link):
    response = client.get(f"/s/{link.token}/", HTTP_ACCEPT_LANGUAGE="ru,en;q=0.8")
    html = response.content.decode()
    assert '<html lang="kk">' in html
    assert "Сауалнама тілін таңдаңыз:" in html
    assert "ә" in html and "ғ" in html and "қ" in html and "ү" in html and "і" in html
    config = json.loads(
        re.search(r'id="tanys-config" type="application/json">(.*?)</script>', html).group(1)
    )
    assert config["lang"] == "kk" and config["explicitLang"] is False
    assert config["messages"]["required"] == "Бұл сұраққа жауап беру міндетті."


def test_language_chosen_in_the_address(client, link):
    html = client.get(f"/s/{link.token}/?lang=ru").content.decode()
    assert '<html lang="ru">' in html
    assert "Выберите язык анкеты:" in html
    assert "Место проживания" in html  # a group label from the instrument
    en = client.get(f"/s/{link.token}/?lang=en").content.decode()
    assert "Place of residence" in en and "Send answers" in en
    assert '<html lang="kk">' in client.get(f"/s/{link.token}/?lang=de").content.decode()


@pytest.mark.parametrize(
    ("lang", "title"),
    [
        ("kk", "Қазақстандағы бейресми байланыстар"),
        ("ru", "Неформальные связи в Казахстане"),
        ("en", "Informal networks in Kazakhstan"),
    ],
)
def test_page_title_and_heading_in_the_forms_language(client, link, lang, title):
    html = client.get(f"/s/{link.token}/?lang={lang}").content.decode()
    assert f"<title>{title}</title>" in html
    assert f'<h1 id="title-0" tabindex="-1">{title}</h1>' in html
    thanks = client.get(f"/s/{link.token}/thanks/?lang={lang}").content.decode()
    assert f"· {title}</title>" in thanks


def test_a_form_without_translated_titles_keeps_its_form_title(client):
    from surveys.services import create_links
    from tests.surveys.webform_fixtures import roster_wave

    wave = roster_wave()
    token = create_links(wave=wave, kind="public", count=1)[0].token
    assert "titles" not in wave.form_version.definition
    html = client.get(f"/s/{token}/?lang=kk").content.decode()
    assert f"<title>{wave.form_version.title}</title>" in html


def test_favicon_answers_and_pages_link_to_it(client, link):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon["Content-Type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert "max-age" in icon["Cache-Control"]
    for url in ("/", f"/s/{link.token}/", f"/s/{link.token}/thanks/"):
        assert 'rel="icon" href="/static/surveys/favicon.ico"' in client.get(url).content.decode()


def test_labels_are_bound_to_inputs(client, link):
    html = client.get(f"/s/{link.token}/").content.decode()
    assert '<label class="label" for="f-BIRTH_YEAR">' in html
    assert 'id="f-BIRTH_YEAR" name="BIRTH_YEAR"' in html
    assert 'aria-describedby="h-BIRTH_YEAR e-BIRTH_YEAR"' in html
    assert 'role="alert"' in html


def test_pages_follow_field_list_groups(link):
    pages = build_pages(link.wave.form_version.definition, "en")
    titles = [p.title for p in pages]
    assert titles[1:4] == [
        "Place of residence",
        "About you",
        "Your views on the situation in the country",
    ]
    assert pages[0].items[0].name == "INTRO" and len(pages[0].items) == 1
    med = next(p for p in pages if p.title == "Medical treatment")
    assert [i.name for i in med.items] == ["C_MED", "B_MED", "N_MED"]
    assert med.section == "Contacts with public services"
    assert all(i.type != "calculate" for p in pages for i in p.items)
    # The closing note (END) is not a page: it is said on the thank-you page.
    assert all(i.name != "END" for p in pages for i in p.items)
    assert len(pages) == 22  # with the three pages of the indirect designs


def test_json_submission_is_stored_and_retry_is_idempotent(client, link):
    body = payload(started_at="2026-11-26T08:00:00Z", ended_at="2026-11-26T08:14:00Z")
    first = post_json(client, link, body, HTTP_USER_AGENT=PHONE, REMOTE_ADDR="203.0.113.7")
    assert first.status_code == 200
    assert first.json()["redirect"] == f"/s/{link.token}/thanks/?lang=kk"
    again = post_json(client, link, body)
    assert again.status_code == 200
    submission = Submission.objects.get()
    assert submission.user_agent_class == "phone"
    assert submission.duration_seconds == 14 * 60
    stored = json.dumps(
        [getattr(submission, f.attname) for f in Submission._meta.fields], default=str
    )
    assert "203.0.113.7" not in stored and "Pixel" not in stored  # no IP, no user-agent string


def test_json_errors_come_back_per_question_in_the_respondents_language(client, link):
    response = post_json(
        client, link, payload(language="ru", answers=complete_answers(BIRTH_YEAR="2015", SEX=None))
    )
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Исправьте, пожалуйста, отмеченные ниже ответы."
    assert "18 лет" in body["errors"]["BIRTH_YEAR"][0]
    assert set(body["errors"]) == {"BIRTH_YEAR", "SEX"}
    assert Submission.objects.count() == 0


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        (complete_answers(UNKNOWN_Q="1"), "UNKNOWN_Q"),
        (complete_answers(HH_SIZE="три"), "HH_SIZE"),
        (complete_answers(C_POL="1"), "B_POL"),
    ],
)
def test_refusals_per_question(client, link, answers, field):
    response = post_json(client, link, payload(answers=answers))
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Submission.objects.count() == 0


def test_instance_id_conflict(client, link):
    body = payload()
    assert post_json(client, link, body).status_code == 200
    body["answers"] = complete_answers(P2="4")
    response = post_json(client, link, body)
    assert response.status_code == 409
    assert response.json()["code"] == "instance_conflict"
    assert Submission.objects.get().answers["P2"] == 2


def test_oversized_and_unreadable_payloads(client, link):
    big = payload(language="en", answers=complete_answers(R1="3", R1_OTHER="x" * 300_000))
    response = post_json(client, link, big)
    assert response.status_code == 413
    # Too large to be read at all, so the message is in the form's default language.
    assert response.json()["message"].startswith("Жауаптардың көлемі тым үлкен")
    broken = client.post(f"/s/{link.token}/", "{not json", content_type="application/json")
    assert broken.status_code == 400
    assert broken.json()["message"] == "Жауаптарды оқу мүмкін болмады."
    assert Submission.objects.count() == 0


def test_form_does_not_thank_before_sending(client, link):
    html = client.get(f"/s/{link.token}/?lang=ru").content.decode()
    assert "Большое спасибо за участие" not in html
    assert "Ваши ответы ещё не отправлены" in html


def test_closing_notes_are_the_unconditional_notes_after_the_last_question():
    def q(name, type_="integer", **more):
        return {"kind": "question", "name": name, "type": type_, **more}

    definition = {
        "children": [
            q("intro", "note"),
            q("age"),
            {"kind": "group", "name": "g", "children": [q("bye", "note"), q("calc", "calculate")]},
            q("if_young", "note", relevant={"op": "<", "args": []}),
            q("end", "note"),
        ],
        "choices": {},
    }
    assert [n["name"] for n in closing_notes(definition)] == ["bye", "end"]
    pages = build_pages({**definition, "style": "pages"}, "en")
    assert [[i.name for i in p.items] for p in pages] == [["intro"], ["age"], ["if_young"]]
    definition["children"].append({"kind": "repeat", "name": "r", "children": [q("x")]})
    assert closing_notes(definition) == []


def test_plain_html_form_without_javascript(client, link):
    form = {
        "_language": "en",
        "_instance_id": str(uuid.uuid4()),
        "_started_at": "2026-11-26T08:00:00+00:00",
        **complete_answers(BIRTH_YEAR="2015"),
    }
    refused = client.post(f"/s/{link.token}/", form)
    assert refused.status_code == 400
    html = refused.content.decode()
    assert "This survey is for adults aged 18 and over." in html
    # The error box lists the error as a link to its question, not only "correct below".
    assert '<li><a href="#q-BIRTH_YEAR">In what year were you born? — This survey' in html
    assert 'value="2015"' in html  # the answers are kept in the page
    assert 'name="SEX" value="2" checked' in html
    form["BIRTH_YEAR"] = "1960"
    stored = client.post(f"/s/{link.token}/", form)
    assert stored.status_code == 302 and stored["Location"] == f"/s/{link.token}/thanks/?lang=en"
    assert client.post(f"/s/{link.token}/", form).status_code == 302  # a second press
    assert Submission.objects.get().answers["BIRTH_YEAR"] == 1960


def test_thank_you_page(client, link):
    response = client.get(f"/s/{link.token}/thanks/?lang=kk")
    assert "Рахмет! Жауаптарыңыз қабылданды." in response.content.decode()
    # The instrument's closing note, in the interview's language.
    assert "Сауалнамаға қатысқаныңызға көп рахмет!" in response.content.decode()
    ru = client.get(f"/s/{link.token}/thanks/?lang=ru").content.decode()
    assert "Большое спасибо за участие в опросе!" in ru and "рахмет" not in ru
    assert client.get("/s/nope/thanks/").status_code == 404


@pytest.mark.parametrize(
    ("agent", "kind"),
    [
        (PHONE, "phone"),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1",
            "phone",
        ),
        ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) Safari/604.1", "tablet"),
        (
            "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
            "tablet",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
            "desktop",
        ),
        ("", ""),
    ],
)
def test_user_agent_class(agent, kind):
    assert user_agent_class(agent) == kind


def test_first_load_is_under_150_kb_gzipped(client, link):
    """HTML, CSS and JS of the form page, each gzipped as the server sends them."""
    response = client.get(f"/s/{link.token}/", HTTP_ACCEPT_ENCODING="gzip")
    html = response.content
    if response.get("Content-Encoding") != "gzip":
        html = gzip.compress(html)
    page = gzip.decompress(html).decode()
    assets = re.findall(r'(?:href|src)="/static/([^"]+\.(?:css|js))"', page)
    assert sorted(assets) == [
        "surveys/expressions.js",
        "surveys/form.css",
        "surveys/form.js",
        "surveys/outbox.js",
    ]
    total = len(html)
    for asset in assets:
        with open(finders.find(asset), "rb") as handle:
            total += len(gzip.compress(handle.read()))
    assert total < 150 * 1024, f"first load is {total} bytes gzipped"


def test_plain_html_errors_inside_a_roster_entry_name_the_entry(client):
    from surveys.services import create_links
    from tests.surveys.webform_fixtures import roster_wave

    token = create_links(wave=roster_wave(), kind="public", count=1)[0].token
    form = {
        "_language": "en",
        "_instance_id": str(uuid.uuid4()),
        "REGION": "x",
        "member[1].first_name": "Aru",
        "member[1].age": "300",
    }
    html = client.post(f"/s/{token}/", form).content.decode()
    assert '<a href="#q-member[1].age">Entry 1: Age — ' in html


def test_service_worker_is_served_under_the_form_pages_and_versioned(client):
    response = client.get("/s/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cache-Control"] == "no-cache"
    source = response.content.decode()
    version = re.match(r'const VERSION = "([0-9a-f]{16})";', source)
    assert version and 'const STATIC_URL = "/static/";' in source
    assert "addEventListener('fetch'" in source
    assert client.get("/s/sw.js").content.decode() == source  # one version per set of files
