"""The indirect designs' indicators in the wave computation: each cell equals the R-checked
contrast of `analytics.stats.indirect` on the stored answers (read through the ORM, not the
snapshot), nationally and in every domain; publication rules and flags apply."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analytics import services
from analytics.indicators import BY_CODE
from analytics.stats.estimation import Design
from analytics.stats.indirect import (
    contrast,
    crosswise_terms,
    forced_response_terms,
    list_experiment_terms,
    with_gap,
)
from analytics.stats.publication import publication
from surveys.demo import CROSSWISE_R, RATES_CURRENT, RR_TRUTH, RR_YES, generate_wave
from tests.analytics.test_computation import answers_frame, cells
from tests.factories import WaveFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    return (
        frame[name].fillna(-9).to_numpy(dtype=float) if name in frame else np.full(len(frame), -9.0)
    )


def expected_terms(frame: pd.DataFrame, code: str, domain: np.ndarray | None):
    """The design's terms written out from the answers, as a researcher would in R."""
    arm = _column(frame, "LE_ARM")
    count = np.where(
        arm == 1, _column(frame, "LE_T"), np.where(arm == 0, _column(frame, "LE_C"), np.nan)
    )
    count[count < 0] = np.nan

    def yes(name: str, valid: list[int]) -> np.ndarray:
        x = _column(frame, name)
        return np.where(np.isin(x, valid), (x == 1).astype(float), np.nan)

    design = code.rsplit("_", 1)[1]
    terms = {
        "LIST": lambda: list_experiment_terms(count, arm == 1, domain),
        "RR": lambda: forced_response_terms(
            yes("RR_E1", [1, 2]), p_truth=RR_TRUTH, p_yes=RR_YES, domain=domain
        ),
        "CW": lambda: crosswise_terms(yes("CW_E1", [1, 2]), p_unrelated=CROSSWISE_R, domain=domain),
    }[design]()
    if code.startswith("GAP"):
        terms = with_gap(terms, yes("E1", [1, 2, 3]), domain)
    return terms


CODES = [f"{kind}_BRIBE_12M_{d}" for kind in ("INDIRECT", "GAP") for d in ("LIST", "RR", "CW")]


@pytest.fixture
def computed():
    wave = WaveFactory(geography="KZ2022", fieldwork_start=dt.date(2026, 3, 1), code="I2026")
    generate_wave(wave=wave, form_version=wave.form_version, n=3000, seed=21, rates=RATES_CURRENT)
    services.recompute_wave(wave_id=wave.pk)
    return wave, answers_frame(wave), {code: cells(wave, code) for code in CODES}


def test_each_cell_equals_the_contrast_on_the_stored_answers(computed):
    _, frame, stored = computed
    for code in CODES:
        _check_cells(frame, stored, code)


def _check_cells(frame, stored, code):
    design = Design(frame["weight"].to_numpy(float), strata=frame["stratum"], psu=frame["psu"])
    national, regions = stored[code]
    expected = _contrast(design, expected_terms(frame, code, None))
    assert national.estimate == pytest.approx(expected["estimate"], rel=1e-9)
    assert national.se == pytest.approx(expected["se"], rel=1e-9)
    assert national.ci_method == "wald"
    checked = 0
    for geography, column in (("KZ2022", "region"), ("KZ2013", "unit")):
        by_code = {r.region.code: r for r in regions if r.geography == geography}
        assert set(by_code) == set(frame[column])
        for region_code, cell in by_code.items():
            inside = (frame[column] == region_code).to_numpy()
            want = _contrast(design, expected_terms(frame, code, inside))
            assert cell.n == want["n"]
            if cell.suppressed:
                assert cell.estimate is None and cell.suppression_reason
                continue
            checked += 1
            assert cell.estimate == pytest.approx(want["estimate"], rel=1e-9)
            assert cell.se == pytest.approx(want["se"], rel=1e-9)
            assert cell.ci_low < cell.estimate < cell.ci_high
    assert checked or code.startswith("INDIRECT_BRIBE_12M_LIST"), "some regional cell is published"


def test_the_gap_is_the_difference_with_the_se_of_the_joint_linearisation(computed):
    _, _, stored = computed
    for design in ("LIST", "RR", "CW"):
        indirect = stored[f"INDIRECT_BRIBE_12M_{design}"][0]
        gap = stored[f"GAP_BRIBE_12M_{design}"][0]
        direct = (
            stored["INDIRECT_BRIBE_12M_RR"][0].estimate - stored["GAP_BRIBE_12M_RR"][0].estimate
        )
        assert gap.estimate == pytest.approx(indirect.estimate - direct, abs=1e-12)
        assert gap.se != pytest.approx(
            indirect.se
        )  # the direct share's variance and covariance count
        assert gap.estimate > 0  # the demo's direct question under-reports


def test_every_domain_has_a_row_and_the_comparisons_are_filled(computed):
    _, _, stored = computed
    national, regions = stored["INDIRECT_BRIBE_12M_RR"]
    assert len([r for r in regions if r.geography == "KZ2022"]) == 20
    published = [r for r in regions if not r.suppressed]
    assert published and all(r.diff_vs_rest_se is not None for r in published)
    assert (
        BY_CODE["INDIRECT_BRIBE_12M_RR"].label("en")
        == "Gave a bribe in the last 12 months (randomized response)"
    )


def test_an_estimate_outside_the_unit_interval_is_kept_and_flagged():
    reasons, flags = publication(
        kind="mean", estimate=-0.04, se=0.01, ci_low=-0.06, ci_high=-0.02,
        n=400, n_numerator=400, n_eff=300, df=40, bounded=True,
    )  # fmt: skip
    assert reasons == [] and flags == ["outside[0,1]"]
    _, inside = publication(
        kind="mean", estimate=0.3, se=0.01, ci_low=0.28, ci_high=0.32,
        n=400, n_numerator=400, n_eff=300, df=40, bounded=True,
    )  # fmt: skip
    assert inside == []


def test_a_gap_near_zero_is_not_suppressed_for_its_relative_error():
    common = {
        "se": 0.02,
        "ci_low": -0.03,
        "ci_high": 0.05,
        "n": 400,
        "n_numerator": 400,
        "n_eff": 300,
        "df": 40,
    }
    assert publication(kind="difference", estimate=0.01, **common)[0] == []
    assert publication(kind="mean", estimate=0.01, **common)[0] == ["rse>=30%"]


def _contrast(design, pair):
    terms, constant = pair
    return contrast(design, terms, constant=constant)


def test_the_dashboard_shows_the_gap_labelled_with_its_design(client, computed):
    from django.urls import reverse

    from tests.analytics.factories_estimates import make_user

    wave, _, stored = computed
    client.force_login(make_user("researcher", "researcher"))
    response = client.get(
        reverse("analytics:dashboard"),
        {"survey": wave.survey.code, "waves": [wave.pk], "indicator": "GAP_BRIBE_12M_RR"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Under-reporting gap: randomized response minus direct E1" in html
    assert 'role="img"' in html
    national = stored["GAP_BRIBE_12M_RR"][0]
    assert f"{national.estimate * 100:.1f}" in html


def test_the_estimates_use_the_probabilities_the_questionnaire_declares():
    """A form that gives respondents other probabilities (a die: p = 4/6) is estimated with
    its own, not with the instrument's."""
    from analytics.models import BreakdownEstimate
    from surveys.models import FormVersion

    wave = WaveFactory(geography="KZ2022", fieldwork_start=dt.date(2026, 3, 1), code="P2026")
    generate_wave(wave=wave, form_version=wave.form_version, n=1500, seed=5, rates=RATES_CURRENT)
    definition = wave.form_version.definition
    definition["designs"] = [
        {"design": "rr", "answer": "RR_E1", "p": 0.6, "q": 0.25},
        {"design": "crosswise", "answer": "CW_E1", "r": 0.3},
    ]
    FormVersion.objects.filter(pk=wave.form_version_id).update(definition=definition)
    services.recompute_wave(wave_id=wave.pk)

    frame = answers_frame(wave)
    design = Design(frame["weight"].to_numpy(float), strata=frame["stratum"], psu=frame["psu"])

    def yes(name: str) -> np.ndarray:
        x = _column(frame, name)
        return np.where(np.isin(x, [1, 2]), (x == 1).astype(float), np.nan)

    for code, terms, instruments, terms_of in (
        (
            "INDIRECT_BRIBE_12M_RR",
            forced_response_terms(yes("RR_E1"), p_truth=0.6, p_yes=0.25),
            forced_response_terms(yes("RR_E1"), p_truth=RR_TRUTH, p_yes=RR_YES),
            lambda domain: forced_response_terms(
                yes("RR_E1"), p_truth=0.6, p_yes=0.25, domain=domain
            ),
        ),
        (
            "INDIRECT_BRIBE_12M_CW",
            crosswise_terms(yes("CW_E1"), p_unrelated=0.3),
            crosswise_terms(yes("CW_E1"), p_unrelated=CROSSWISE_R),
            lambda domain: crosswise_terms(yes("CW_E1"), p_unrelated=0.3, domain=domain),
        ),
    ):
        national = cells(wave, code)[0]
        want, other = _contrast(design, terms), _contrast(design, instruments)
        assert national.estimate == pytest.approx(want["estimate"], rel=1e-9)
        assert national.se == pytest.approx(want["se"], rel=1e-9)
        assert abs(want["estimate"] - other["estimate"]) > 0.02  # the parameters matter
        women = BreakdownEstimate.objects.get(
            result_set__is_current=True, wave=wave, indicator=code, breakdown="sex",
            group="female", region=None,
        )  # fmt: skip
        inside = (frame["SEX"] == 2).to_numpy()
        terms, constant = terms_of(inside)
        assert women.estimate == pytest.approx(
            contrast(design, terms, constant=constant)["estimate"], rel=1e-9
        )


def test_the_instrument_declares_the_probabilities_of_the_indicator_table():
    """So the demo and every wave of the instrument are estimated as the table says."""
    from analytics.indirect_cells import as_declared
    from surveys.management.commands.setup_demo import INSTRUMENT
    from surveys.xlsform import compile_xlsform

    definition = compile_xlsform(INSTRUMENT.read_bytes(), filename=INSTRUMENT.name).definition
    designs = {d["design"]: d for d in definition["designs"]}
    assert (designs["rr"]["p"], designs["rr"]["q"], designs["crosswise"]["r"]) == (
        RR_TRUTH,
        RR_YES,
        CROSSWISE_R,
    )
    for code in ("INDIRECT_BRIBE_12M_RR", "GAP_BRIBE_12M_CW"):
        indicator = BY_CODE[code]
        assert as_declared(indicator, definition).parameters == indicator.parameters
    assert dict(BY_CODE["INDIRECT_BRIBE_12M_RR"].parameters) == {
        "p_truth": RR_TRUTH,
        "p_yes": RR_YES,
    }
