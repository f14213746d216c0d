"""The dashboard's breakdown section: its numbers (pure) and the page with the picker."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analytics.dashboard import WaveRecord
from analytics.dashboard_breakdowns import BreakdownRecord, breakdown_section
from tests.analytics.factories_estimates import (
    breakdown_estimates,
    make_user,
    two_waves_with_estimates,
)
from tests.analytics.test_dashboard_content import TEXTS

W1 = WaveRecord(id=1, code="2024", label="2024")
W2 = WaveRecord(id=2, code="2026", label="2026")
GROUPS = [("male", "Men"), ("female", "Women")]


def test_groups_in_per_cent_with_their_difference_from_the_rest() -> None:
    section = breakdown_section(
        estimates=[
            BreakdownRecord(
                1,
                "female",
                0.62,
                0.58,
                0.66,
                410,
                national_estimate=0.6,
                diff_vs_rest=0.04,
                diff_vs_rest_p_adjusted=0.012,
            ),
            BreakdownRecord(
                1,
                "male",
                0.58,
                0.54,
                0.62,
                390,
                national_estimate=0.6,
                diff_vs_rest=-0.04,
                diff_vs_rest_p_adjusted=0.012,
                review_flag="df<8",
            ),
            BreakdownRecord(
                2,
                "male",
                None,
                n=12,
                suppressed=True,
                suppression_reason="n<30,n_eff<30",
                national_estimate=0.65,
            ),
            BreakdownRecord(2, "female", 0.7, 0.6, 0.8, 300, national_estimate=0.65),
        ],  # fmt: skip
        waves=[W1, W2],
        groups=GROUPS,
        title="Bribery by sex",
        nothing_to_draw="nothing",
        texts=TEXTS,
    )
    assert [(r.wave, r.group) for r in section.table] == [
        ("2024", "Men"),
        ("2024", "Women"),
        ("2026", "Men"),
        ("2026", "Women"),
    ]
    men = section.table[0]
    assert men.estimate == pytest.approx(58.0) and men.ci_low == pytest.approx(54.0)
    assert men.diff_vs_rest == pytest.approx(-4.0) and men.p_adjusted == 0.012
    assert men.review and men.review_notes == ("fewer than 8 degrees of freedom",)
    hidden = section.table[2]
    assert hidden.suppressed and hidden.estimate is None and hidden.n == 12
    assert hidden.reasons == ("fewer than 30 respondents", "effective sample size below 30")
    assert section.chart is not None and section.chart.regions == ("Men", "Women")
    assert [s.national for s in section.chart.series] == [pytest.approx(60.0), pytest.approx(65.0)]
    assert section.chart.series[1].points[0].suppressed
    assert section.nothing_to_draw == ""


def test_nothing_to_draw_when_every_group_is_suppressed() -> None:
    section = breakdown_section(
        estimates=[
            BreakdownRecord(1, code, None, n=5, suppressed=True, suppression_reason="n<30")
            for code, _label in GROUPS
        ],
        waves=[W1],
        groups=GROUPS,
        title="t",
        nothing_to_draw="Every estimate of this breakdown is suppressed.",
        texts=TEXTS,
    )
    assert section.chart is None and len(section.table) == 2
    assert section.nothing_to_draw == "Every estimate of this breakdown is suppressed."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "title", "men"),
    [("en", "by sex", "Men"), ("ru", "пол", "Мужчины"), ("kk", "жынысы", "Ерлер")],
)
def test_the_breakdown_picker_shows_the_groups(client, monkeypatch, language, title, men):
    import uuid

    from analytics import charts

    monkeypatch.setattr(charts, "STYLE", f"test-{uuid.uuid4().hex}")
    earlier, later = two_waves_with_estimates()
    breakdown_estimates(later, breakdown="sex", suppressed_groups=("female",))
    client.force_login(make_user("researcher", "researcher"))
    url = reverse("analytics:dashboard")
    query = {"survey": later.survey.code, "waves": [later.pk], "indicator": "PERC_BRIBE"}
    plain = client.get(url, query, HTTP_ACCEPT_LANGUAGE=language)
    assert plain.context["breakdown_section"] is None
    response = client.get(url, {**query, "breakdown": "sex"}, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    html = response.content.decode()
    section = response.context["breakdown_section"]
    assert title in section.title.lower()
    assert [row.group for row in section.table] == [men, section.table[1].group]
    assert section.table[0].estimate == pytest.approx(50.0) and section.table[1].suppressed
    assert 'id="breakdown"' in html and 'id="id_breakdown"' in html
    assert "breakdown-estimates/download/?survey=" in html
    assert response.context["breakdown_svg"].count('role="img"') == 1
