"""Synthetic demo waves: deterministic, across all units, near the 2013 headline figures."""

import numpy as np
import pytest
from django.core.management import call_command

from surveys.demo import RATES_2013, RATES_CURRENT, draw_interviews
from surveys.models import Submission, Wave

pytestmark = pytest.mark.django_db


def weighted_share(cols, item, numerator, valid):
    mask = np.isin(cols[item], valid)
    hits = np.isin(cols[item], numerator) & mask
    return float((cols["weight"] * hits).sum() / (cols["weight"] * mask).sum())


def test_draws_are_deterministic_for_a_seed():
    a = draw_interviews(n=500, geography="KZ2013", rates=RATES_2013, fieldwork_year=2013, seed=7)
    b = draw_interviews(n=500, geography="KZ2013", rates=RATES_2013, fieldwork_year=2013, seed=7)
    c = draw_interviews(n=500, geography="KZ2013", rates=RATES_2013, fieldwork_year=2013, seed=8)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["P1"], c["P1"])


def test_2013_draws_land_near_the_published_headlines():
    cols = draw_interviews(
        n=40_000, geography="KZ2013", rates=RATES_2013, fieldwork_year=2013, seed=1
    )
    assert weighted_share(cols, "P1", [1, 2], [1, 2, 3, 4, -1]) >= 0.80
    assert 0.35 <= weighted_share(cols, "E1", [1, 2], [1, 2, 3]) <= 0.45
    assert 0.58 <= weighted_share(cols, "E2", [1, 2, 3], [1, 2, 3, 4]) <= 0.70
    assert set(cols["region"]) and len(set(cols["region"])) == 16


def test_current_wave_rates_are_shifted():
    old = draw_interviews(
        n=20_000, geography="KZ2013", rates=RATES_2013, fieldwork_year=2013, seed=3
    )
    new = draw_interviews(
        n=20_000, geography="KZ2022", rates=RATES_CURRENT, fieldwork_year=2026, seed=3
    )
    assert (
        weighted_share(new, "P1", [1, 2], [1, 2, 3, 4, -1])
        < weighted_share(old, "P1", [1, 2], [1, 2, 3, 4, -1]) - 0.05
    )
    assert len(set(new["region"])) == 20


def test_skipped_sphere_items_get_the_not_applicable_code():
    cols = draw_interviews(
        n=2_000, geography="KZ2022", rates=RATES_CURRENT, fieldwork_year=2026, seed=5
    )
    no_contact = cols["C_MED"] == 2
    assert (cols["B_MED"][no_contact] == -3).all() and (cols["N_MED"][no_contact] == -3).all()
    assert not np.isin(cols["B_MED"][~no_contact], [-3]).any()


def test_adults_only():
    cols = draw_interviews(
        n=5_000, geography="KZ2013", rates=RATES_2013, fieldwork_year=2013, seed=2
    )
    assert (2013 - cols["BIRTH_YEAR"] >= 18).all()


def test_generate_demo_wave_command_writes_flagged_interviews(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    call_command("setup_demo", n_2013=120, n_current=150)
    wave = Wave.objects.get(code="2013")
    assert wave.is_synthetic and wave.geography == "KZ2013"
    assert Submission.objects.filter(wave=wave).count() == 120
    assert Submission.objects.filter(wave__code="2026").count() == 150
    assert not Submission.objects.filter(is_synthetic=False).exists()
    regions = set(Submission.objects.filter(wave=wave).values_list("region__geography", flat=True))
    assert regions == {"KZ2013"}
    sample = Submission.objects.filter(wave=wave).first()
    assert sample.answers["REGION"] == sample.region.code
    # running it again keeps the waves as they are
    call_command("generate_demo_wave", wave="2013", n=120, seed=2013)
    assert Submission.objects.filter(wave=wave).count() == 120


def test_the_indirect_items_find_the_true_prevalence_that_e1_under_reports():
    from analytics.stats.estimation import Design
    from analytics.stats.indirect import (
        Term,
        contrast,
        crosswise_terms,
        forced_response_terms,
        list_experiment_terms,
    )
    from surveys.demo import CROSSWISE_R, RR_TRUTH, RR_YES

    cols = draw_interviews(
        n=30_000, geography="KZ2013", rates=RATES_2013, fieldwork_year=2013, seed=11
    )
    design = Design(cols["weight"], strata=cols["stratum"], psu=cols["psu"])
    w = cols["weight"]
    truth = float((w * cols["_bribe_12m"]).sum() / w.sum())
    assert abs(truth - RATES_2013.bribe_12m) < 0.05  # the known prevalence, up to clustering

    def share(item, valid):
        return np.where(np.isin(cols[item], valid), (cols[item] == 1).astype(float), np.nan)

    def estimate(pair):
        terms, constant = pair
        return contrast(design, terms, constant=constant)

    count = cols["_list_count"].astype(float)
    estimates = {
        "list": estimate(list_experiment_terms(count, cols["LE_ARM"] == 1)),
        "rr": estimate(
            forced_response_terms(share("RR_E1", [1, 2]), p_truth=RR_TRUTH, p_yes=RR_YES)
        ),
        "cw": estimate(crosswise_terms(share("CW_E1", [1, 2]), p_unrelated=CROSSWISE_R)),
    }
    e1 = share("E1", [1, 2, 3])
    direct = contrast(design, [Term(1.0, e1, np.ones(e1.shape[0], dtype=bool))])["estimate"]
    assert direct < truth - 0.08  # the direct question misses a good part
    for name, result in estimates.items():
        # each design's 99.9% interval holds the truth of this sample
        assert abs(result["estimate"] - truth) < 3.3 * result["se"], (name, result, truth)
        assert result["estimate"] > direct + 0.04, name
