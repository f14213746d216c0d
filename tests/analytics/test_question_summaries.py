"""Question summaries page and downloads: the numbers are those of the R-checked pure
functions (`analytics.stats.summaries`) on the wave's stored interviews, suppressed shares
keep no count, files read back, the cache follows the data, access is the dashboard's."""

from __future__ import annotations

import csv
import io
import uuid

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from analytics import services, summaries
from analytics.models import WaveComputation
from analytics.stats.estimation import Design
from analytics.stats.summaries import multiple_choice, single_choice
from analytics.summary_content import ALL, BASE
from audit.models import AuditEvent
from surveys.models import Submission
from tests.analytics.factories_estimates import instrument_wave, make_user

pytestmark = pytest.mark.django_db
SHARE_FIELDS = ("estimate", "se", "ci_low", "ci_high")


@pytest.fixture(autouse=True)
def fresh_cache_keys(monkeypatch):
    """Summaries and charts are cached (in Redis under CI) across runs: keys of our own."""
    from analytics import charts

    monkeypatch.setattr(summaries, "SUMMARY_FORMAT", f"test-{uuid.uuid4().hex}")
    monkeypatch.setattr(charts, "STYLE", f"test-{uuid.uuid4().hex}")


@pytest.fixture
def wave():
    wave = instrument_wave(n=240, seed=11)
    services.recompute_wave(wave_id=wave.pk)
    return wave


@pytest.fixture
def researcher(client, wave):
    client.force_login(make_user("researcher", "researcher"))
    return client


def _stored(wave):
    rows = list(
        Submission.objects.filter(wave=wave)
        .order_by("id")
        .values_list("weight", "stratum", "psu", "answers")
    )
    design = Design(
        np.array([r[0] for r in rows], dtype=float),
        strata=np.array([r[1] for r in rows]),
        psu=np.array([f"{r[1]}/{r[2]}" for r in rows]),
    )
    return design, [r[3] for r in rows]


def _codes(answers, name):
    return np.array([float(a[name]) if name in a else np.nan for a in answers])


def _assert_same(cell, expected, what):
    if cell.suppressed:
        assert cell.estimate is None and cell.n is None, what
        return
    for field in SHARE_FIELDS:
        assert getattr(cell, field) == pytest.approx(float(expected[field]), rel=1e-9), (
            what,
            field,
        )
    assert cell.n == int(expected["n"]) and cell.n_base == int(expected["n_base"]), what


def test_page_shows_the_pure_functions_shares_for_the_whole_and_by_sex(researcher, wave):
    response = researcher.get(
        reverse("analytics:summaries"), {"breakdown": "sex"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    computed = response.context["summaries"]
    assert computed.wave_id == wave.pk  # the current wave by default
    by_name = {q.name: q for q in computed.questions}
    assert "SEX" in by_name and "P1" in by_name and "M" in by_name
    assert "M_OTHER" not in by_name  # free text is not summarised
    design, answers = _stored(wave)
    sex = _codes(answers, "SEX")
    sex_groups = np.where(np.isin(sex, [1, 2]), sex - 1, -1).astype(int)

    p1 = by_name["P1"]
    codes = [c for c, _labels in p1.answers]
    assert codes[:4] == [1, 2, 3, 4]
    whole = single_choice(design, _codes(answers, "P1"), codes)
    by_sex = single_choice(
        design, _codes(answers, "P1"), codes, domain_codes=sex_groups, n_domains=2
    )
    published = 0
    for _i, expected in whole.iterrows():
        cell = p1.cell(ALL, expected["code"])
        _assert_same(cell, expected, ("P1", expected["code"]))
        published += not cell.suppressed
    for _i, expected in by_sex.iterrows():
        _assert_same(p1.cell(int(expected["domain"]), expected["code"]), expected, "P1 by sex")
    assert published >= 2
    assert p1.cell(ALL, BASE).n_base == int(np.isin(_codes(answers, "P1"), codes).sum())

    m = by_name["M"]
    options = [c for c, _labels in m.answers]
    ticked = [
        a.get("M", []) if isinstance(a.get("M"), list) else str(a.get("M", "")).split()
        for a in answers
    ]
    chosen = {o: np.array([o in t for t in ticked]) for o in options}
    answered = np.array([bool(t) for t in ticked])
    for _i, expected in multiple_choice(design, chosen, answered).iterrows():
        _assert_same(m.cell(ALL, expected["code"]), expected, ("M", expected["code"]))

    html = response.content.decode()
    first = next(c for c in p1.cells if c.group == ALL and not c.suppressed and c.code != BASE)
    assert f"{100 * first.estimate:.1f}" in html
    assert html.count('role="img"') == len(computed.questions)  # a chart per question
    assert "Men" in html and "Women" in html
    assert "fewer than 10 respondents gave that answer" in html  # the rule is stated


def test_a_suppressed_share_publishes_no_count_and_downloads_match_the_page(researcher, wave):
    query = {"wave": wave.pk, "breakdown": "region"}
    page = researcher.get(reverse("analytics:summaries"), query, HTTP_ACCEPT_LANGUAGE="en")
    computed = page.context["summaries"]
    cells = [(q, c) for q in computed.questions for c in q.cells if c.code != BASE]
    small = [c for _q, c in cells if "disclosure<10" in c.reasons]
    assert small and all(c.n is None and c.estimate is None for c in small)
    assert any("complementary" in c.reasons for _q, c in cells)

    response = researcher.get(
        reverse("analytics:summaries-download", args=["csv"]), query, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    today = f"{timezone.localdate():%Y-%m-%d}"
    assert (
        f'filename="tanys_informal-networks_{wave.code}_question-summaries_region_{today}.csv"'
        in response["Content-Disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == len(cells)
    for row, (question, cell) in zip(rows, cells, strict=True):
        assert row["question"] == question.name and row["code"] == str(cell.code)
        if cell.suppressed:
            assert row["share"] == row["n"] == "" and row["suppressed"] == "1"
        else:
            assert float(row["share"]) == pytest.approx(cell.estimate, rel=1e-12)
            assert float(row["ci_high"]) == pytest.approx(cell.ci_high, rel=1e-12)
            assert int(row["n"]) == cell.n
    assert AuditEvent.objects.filter(detail__kind="summaries").count() == 1

    from openpyxl import load_workbook

    response = researcher.get(
        reverse("analytics:summaries-download", args=["xlsx"]), query, HTTP_ACCEPT_LANGUAGE="ru"
    )
    book = load_workbook(io.BytesIO(response.content), read_only=True)
    sheet = list(book["summaries"].iter_rows(values_only=True))
    header, body = sheet[0], sheet[1:]
    assert len(body) == len(cells)
    share = header.index("share")
    for values, (_question, cell) in zip(body, cells, strict=True):
        assert values[share] == (
            None if cell.suppressed else pytest.approx(cell.estimate, rel=1e-12)
        )
    assert any(values[header.index("group")] == "Казахстан" for values in body)
    assert "notes" in book.sheetnames


def test_summaries_are_cached_until_the_data_change(researcher, wave, monkeypatch):
    first = summaries.wave_summaries(wave)
    real = summaries.compute_summaries

    def refuse(*args, **kwargs):
        raise AssertionError("computed again for the same data")

    monkeypatch.setattr(summaries, "compute_summaries", refuse)
    assert summaries.wave_summaries(wave) == first
    monkeypatch.setattr(summaries, "compute_summaries", real)
    Submission.objects.filter(pk=Submission.objects.filter(wave=wave).first().pk).delete()
    services.recompute_wave(wave_id=wave.pk, force=True)
    again = summaries.wave_summaries(wave)
    assert again.n_interviews == first.n_interviews - 1


def test_summaries_follow_the_dashboards_access(client, wave):
    url = reverse("analytics:summaries")
    response = client.get(url, {"wave": wave.pk})
    assert response.status_code == 302 and reverse("analytics:login") in response["Location"]
    client.force_login(make_user("other", "researcher", surveys=("another",)))
    assert client.get(url, {"wave": wave.pk}).status_code == 403
    download = reverse("analytics:summaries-download", args=["csv"])
    assert client.get(download, {"wave": wave.pk}).status_code == 403


def test_page_speaks_the_interface_language(researcher, wave):
    html = researcher.get(
        reverse("analytics:summaries"), HTTP_ACCEPT_LANGUAGE="kk"
    ).content.decode()
    assert "Сұрақтар бойынша қорытынды" in html
    assert "Сіздің жынысыңыз" in html or "жынысыңыз" in html  # the question in Kazakh
    html = researcher.get(
        reverse("analytics:summaries"), HTTP_ACCEPT_LANGUAGE="ru"
    ).content.decode()
    assert "Сводки по вопросам" in html and "Процент опрошенных" in html


def test_codebook_opens_on_the_current_wave_and_describes_age_and_urban(client, wave):
    client.force_login(make_user("micro", "researcher"))
    response = client.get(reverse("analytics:codebook"), HTTP_ACCEPT_LANGUAGE="en")
    book = response.context["codebook"]
    assert book is not None  # not empty until waves are chosen
    variables = {v.name: v for v in book.variables}
    for name in ("AGE", "URBAN"):
        assert all(variables[name].labels.get(lang) for lang in ("kk", "ru", "en")), name
    assert variables["AGE"].labels["ru"] == "Возраст, полных лет"
    html = response.content.decode()
    assert "Urban or rural settlement (1 urban, 2 rural)" in html
    assert "Derived from the settlement type" in html


def test_a_recomputation_leaves_every_breakdowns_summaries_cached(
    wave, monkeypatch, embedded_tasks
):
    """The task flow (`run_recomputation`, in-process here) warms the page's cache for the
    new result set; the page then computes nothing, and what it shows is what it would
    compute."""
    from django.core.cache import cache

    cache.delete(services.WARM_QUEUED_KEY.format(wave_id=wave.pk))  # left by an earlier run
    Submission.objects.filter(pk=Submission.objects.filter(wave=wave).first().pk).delete()
    services.mark_wave_dirty(wave_id=wave.pk)
    assert services.run_recomputation(wave_id=wave.pk) == "computed"
    real = summaries.compute_summaries

    def refuse(*args, **kwargs):
        raise AssertionError("the page computed what the recomputation should have cached")

    monkeypatch.setattr(summaries, "compute_summaries", refuse)
    warmed = {b: summaries.wave_summaries(wave, b) for b in ["", *summaries.BREAKDOWNS]}
    assert warmed[""].n_interviews == 239 and len(warmed["region"].groups) > 1
    monkeypatch.setattr(summaries, "compute_summaries", real)
    selection = summaries.MicrodataSelection(wave_ids=(wave.pk,))
    for breakdown in ("", "sex", "region"):
        fresh = summaries.compute_summaries(wave, selection.codebook(), selection, breakdown)
        assert warmed[breakdown] == fresh, breakdown
    # nothing left to do: a second warm-up computes nothing
    assert summaries.warm_summaries(wave.pk) == []


def test_the_warm_up_gives_way_when_new_interviews_make_a_recomputation_due(wave, monkeypatch):
    from django.core.cache import cache

    cache.clear()
    assert not WaveComputation.objects.get(wave=wave).dirty
    real = summaries._summaries
    computed = []

    def then_new_interviews(inputs, breakdown):
        computed.append(breakdown)
        # a commit meanwhile marks the wave
        WaveComputation.objects.filter(wave=wave).update(dirty=True)
        return real(inputs, breakdown)

    monkeypatch.setattr(summaries, "_summaries", then_new_interviews)
    assert summaries.warm_summaries(wave.pk) == [""] == computed
    assert summaries.warm_summaries(wave.pk) == []  # nothing while the recomputation is due
